//! `manager-tui serve` runs the control plane of a gallery deployment; `manager-tui` is the
//! operator's dashboard on it; `manager-tui --once [--json]` prints its status for scripts.
use std::path::PathBuf;
use std::process::ExitCode;

mod client;
mod fmt;
mod once;
mod serve;
mod token;
mod ui;

const DEFAULT_LOG: &str = "info,rocket=error,hyper=warn,manager_tui::serve::api=error";

const USAGE: &str = "\
usage: manager-tui serve                       run the control plane (pool, balancer, autoscaler, API)
       manager-tui [--api URL]                 the operator's dashboard
       manager-tui --once [--json] [--api URL] [--token-file FILE]
                                               print the status and exit
The API defaults to $GALLERY_CONTROL_URL or http://127.0.0.1:5000. --once takes its token from
--token-file, $GALLERY_TOKEN, or the token the dashboard saved.";

struct Args {
    once: bool,
    json: bool,
    api: String,
    token_file: Option<PathBuf>,
}

fn parse(args: &[String]) -> Result<Args, String> {
    let mut parsed = Args {
        once: false,
        json: false,
        api: std::env::var("GALLERY_CONTROL_URL")
            .unwrap_or_else(|_| "http://127.0.0.1:5000".into()),
        token_file: None,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--once" => parsed.once = true,
            "--json" => parsed.json = true,
            "--api" => parsed.api = it.next().ok_or("--api needs a URL")?.clone(),
            "--token-file" => {
                parsed.token_file = Some(it.next().ok_or("--token-file needs a path")?.into())
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if parsed.json && !parsed.once {
        return Err("--json goes with --once".into());
    }
    Ok(parsed)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("serve") => {
            common::logging::init(DEFAULT_LOG);
            common::config::ManagerConfig::load()
                .map_err(anyhow::Error::from)
                .and_then(|config| rocket::execute(serve::run(config)))
        }
        Some("-h" | "--help") => {
            println!("{USAGE}");
            Ok(())
        }
        _ => match parse(&args) {
            Err(e) => Err(anyhow::anyhow!("{e}\n{USAGE}")),
            Ok(args) => client_main(args),
        },
    };
    match result {
        Ok(()) => match serve::ended_by_signal() {
            Some(signal) => ExitCode::from(128 + signal as u8),
            None => ExitCode::SUCCESS,
        },
        Err(e) => {
            eprintln!("manager-tui: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[tokio::main]
async fn client_main(args: Args) -> anyhow::Result<()> {
    if args.once {
        let token = token::resolve(args.token_file.as_deref()).map_err(anyhow::Error::msg)?;
        let status = client::Client::new(&args.api, Some(token)).status().await?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&status)?);
        } else {
            print!("{}", once::render(&status));
        }
        return Ok(());
    }
    // The dashboard starts logged out unless a token is given explicitly.
    let token = match (&args.token_file, std::env::var("GALLERY_TOKEN")) {
        (Some(_), _) | (None, Ok(_)) => token::resolve(args.token_file.as_deref()).ok(),
        _ => None,
    };
    ui::run::run(client::Client::new(&args.api, None), token).await
}
