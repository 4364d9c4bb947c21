//! Runs the MTN MoMo fake until killed, for manual checks and for
//! `compat/mtnmomo/run.sh`: `cargo run -p malipo-fakes --example serve_mtn
//! [-- PORT]`. Prints the base URL alone on its first line (stdout), then
//! the subscription keys on stderr.

use malipo_fakes::mtn::{MtnFake, MtnFakeConfig};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port: u16 = match std::env::args().nth(1) {
        Some(port) => port.parse().expect("the port is a number"),
        None => 0,
    };
    let config = MtnFakeConfig::default();
    eprintln!(
        "collection subscription key: {}\ndisbursement subscription key: {}\ntarget environment: {}",
        config.collection_subscription_key,
        config.disbursement_subscription_key,
        config.target_environment
    );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("http://{}", listener.local_addr()?);
    MtnFake::new(config).serve(listener).await
}
