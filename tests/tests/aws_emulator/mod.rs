//! (A module of tests/aws.rs, so the SDK clients stay dev-dependencies: nothing else built
//! from this crate pulls them in.)
//!
//! An AWS emulator (moto server, installed by scripts/test) of the test's own, and the
//! deployment an operator's bootstrap would have made in it: a target group behind an ALB
//! and a verified SES sender. The SDK clients are the real ones, pointed at the emulator.
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use aws_sdk_ec2::types::Filter;

use gallery_tests::{env, free_port, wait_until};

pub struct Moto {
    child: Child,
    pub port: u16,
    pub sdk: aws_config::SdkConfig,
}

impl Moto {
    /// Starts an emulator; `env_vars` configure it (`MOTO_ENABLE_AMI_VALIDATION`, …).
    pub async fn start(env_vars: &[(&str, &str)]) -> Moto {
        let port = free_port();
        let child = Command::new(env("GALLERY_MOTO_BIN"))
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .envs(env_vars.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server (installed by scripts/test)");
        let url = format!("http://127.0.0.1:{port}/moto-api/data.json");
        let http = reqwest::Client::new();
        wait_until(
            "the AWS emulator to answer",
            Duration::from_secs(60),
            || {
                let req = http.get(&url).send();
                async move {
                    req.await
                        .ok()
                        .filter(|r| r.status().is_success())
                        .map(|_| ())
                }
            },
        )
        .await;
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(format!("http://127.0.0.1:{port}"))
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_ec2::config::Credentials::new(
                "test", "test", None, None, "static",
            ))
            .load()
            .await;
        Moto { child, port, sdk }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The environment that points a gallery binary's AWS SDK at this emulator.
    pub fn client_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ACCESS_KEY_ID", "test".into()),
            ("AWS_SECRET_ACCESS_KEY", "test".into()),
            // No instance metadata service here; nothing may wait on one.
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ]
    }

    pub fn ec2(&self) -> aws_sdk_ec2::Client {
        aws_sdk_ec2::Client::new(&self.sdk)
    }

    pub fn elb(&self) -> aws_sdk_elasticloadbalancingv2::Client {
        aws_sdk_elasticloadbalancingv2::Client::new(&self.sdk)
    }

    pub fn cloudwatch(&self) -> aws_sdk_cloudwatch::Client {
        aws_sdk_cloudwatch::Client::new(&self.sdk)
    }

    /// Mail the emulator's SES has accepted: (to, subject, body).
    pub async fn sent_mail(&self) -> Vec<(Vec<String>, String, String)> {
        let url = format!("http://127.0.0.1:{}/moto-api/data.json", self.port);
        let data: serde_json::Value = reqwest::get(url).await.unwrap().json().await.unwrap();
        data["ses"]["Message"]
            .as_array()
            .map(|messages| {
                messages
                    .iter()
                    .map(|m| {
                        let to = m["destinations"]["ToAddresses"]
                            .as_array()
                            .map(|a| {
                                a.iter()
                                    .filter_map(|v| v.as_str().map(str::to_owned))
                                    .collect()
                            })
                            .unwrap_or_default();
                        (
                            to,
                            m["subject"].as_str().unwrap_or("").to_owned(),
                            m["body"].as_str().unwrap_or("").to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Instances tagged for `deployment`, in any state: (id, state).
    pub async fn instances(&self, deployment: &str) -> Vec<(String, String)> {
        let reply = self
            .ec2()
            .describe_instances()
            .filters(
                Filter::builder()
                    .name("tag:gallery:deployment")
                    .values(deployment)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        let mut out: Vec<(String, String)> = reply
            .reservations()
            .iter()
            .flat_map(|r| r.instances())
            .map(|i| {
                (
                    i.instance_id().unwrap().to_owned(),
                    i.state()
                        .and_then(|s| s.name())
                        .map(|n| n.as_str().to_owned())
                        .unwrap_or_default(),
                )
            })
            .collect();
        out.sort();
        out
    }

    /// The target group's targets and their health.
    pub async fn targets(&self, target_group: &str) -> Vec<(String, String)> {
        let reply = self
            .elb()
            .describe_target_health()
            .target_group_arn(target_group)
            .send()
            .await
            .unwrap();
        let mut out: Vec<(String, String)> = reply
            .target_health_descriptions()
            .iter()
            .map(|d| {
                (
                    d.target().and_then(|t| t.id()).unwrap_or("").to_owned(),
                    d.target_health()
                        .and_then(|h| h.state())
                        .map(|s| s.as_str().to_owned())
                        .unwrap_or_default(),
                )
            })
            .collect();
        out.sort();
        out
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What `scripts/aws/bootstrap` makes, made in the emulator.
pub struct Deployment {
    pub target_group: String,
    pub load_balancer_arn: String,
    pub alb_dns: String,
    pub subnets: Vec<String>,
    pub sender: String,
}

impl Deployment {
    pub async fn create(moto: &Moto) -> Deployment {
        let ec2 = moto.ec2();
        let elb = moto.elb();
        let vpc = ec2.describe_vpcs().send().await.unwrap().vpcs()[0]
            .vpc_id()
            .unwrap()
            .to_owned();
        let subnets: Vec<String> = ec2
            .describe_subnets()
            .filters(Filter::builder().name("vpc-id").values(&vpc).build())
            .send()
            .await
            .unwrap()
            .subnets()
            .iter()
            .filter_map(|s| s.subnet_id().map(str::to_owned))
            .take(2)
            .collect();
        let tg = elb
            .create_target_group()
            .name("gallery-workers")
            .protocol(aws_sdk_elasticloadbalancingv2::types::ProtocolEnum::Http)
            .port(8000)
            .vpc_id(&vpc)
            .health_check_path("/healthz")
            .target_type(aws_sdk_elasticloadbalancingv2::types::TargetTypeEnum::Instance)
            .send()
            .await
            .unwrap();
        let target_group = tg.target_groups()[0].target_group_arn().unwrap().to_owned();
        let lb = elb
            .create_load_balancer()
            .name("gallery")
            .set_subnets(Some(subnets.clone()))
            .send()
            .await
            .unwrap();
        let lb = &lb.load_balancers()[0];
        elb.create_listener()
            .load_balancer_arn(lb.load_balancer_arn().unwrap())
            .protocol(aws_sdk_elasticloadbalancingv2::types::ProtocolEnum::Http)
            .port(80)
            .default_actions(
                aws_sdk_elasticloadbalancingv2::types::Action::builder()
                    .r#type(aws_sdk_elasticloadbalancingv2::types::ActionTypeEnum::Forward)
                    .target_group_arn(&target_group)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        let sender = "gallery@example.com".to_owned();
        aws_sdk_sesv2::Client::new(&moto.sdk)
            .create_email_identity()
            .email_identity(&sender)
            .send()
            .await
            .unwrap();
        Deployment {
            target_group,
            load_balancer_arn: lb.load_balancer_arn().unwrap().to_owned(),
            alb_dns: lb.dns_name().unwrap().to_owned(),
            subnets,
            sender,
        }
    }

    /// A control plane configuration for this deployment; `extra` is appended (TOML).
    pub fn manager_toml(&self, image: &str, extra: &str) -> String {
        format!(
            r#"provider = "aws"
operators = ["ops@example.com"]
mail_from = "{sender}"
aws_target_group_arn = "{tg}"
aws_image_id = "{image}"
aws_subnets = {subnets:?}
aws_deployment = "test"
metrics_namespace = "GalleryTest"
health_interval_secs = 0.5
sample_interval_secs = 1.0
metrics_read_interval_secs = 1.0
drain_timeout_secs = 1.0
{extra}
"#,
            sender = self.sender,
            tg = self.target_group,
            subnets = self.subnets,
        )
    }
}
