//! `manager-tui serve` runs the control plane of a gallery deployment.
use std::process::ExitCode;

mod serve;

const USAGE: &str = "usage: manager-tui serve    run the control plane (pool, balancer, autoscaler, control API)";

const DEFAULT_LOG: &str = "info,rocket=error,hyper=warn,manager_tui::serve::api=error";

fn main() -> ExitCode {
    common::logging::init(DEFAULT_LOG);
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("serve") => common::config::ManagerConfig::load()
            .map_err(anyhow::Error::from)
            .and_then(|config| rocket::execute(serve::run(config))),
        Some("-h" | "--help") => {
            println!("{USAGE}");
            Ok(())
        }
        _ => Err(anyhow::anyhow!("the dashboard is not built yet\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("manager-tui: {e:#}");
            ExitCode::FAILURE
        }
    }
}
