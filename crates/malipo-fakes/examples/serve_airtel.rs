//! Runs the Airtel Money fake until killed, for manual checks and for
//! `compat/airtel/run.sh`: `cargo run -p malipo-fakes --example
//! serve_airtel [-- PORT [CALLBACK_DELAY_MS]]`. Prints the base URL alone on
//! its first line (stdout), then the application's credentials on stderr.
//! Register a callback URL with `POST /__fake/callback-url {"url": "…"}`.

use std::time::Duration;

use malipo_fakes::airtel::{AirtelFake, AirtelFakeConfig};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let port: u16 = match args.next() {
        Some(port) => port.parse().expect("the port is a number"),
        None => 0,
    };
    let mut config = AirtelFakeConfig::default();
    if let Some(delay) = args.next() {
        config.callback_delay = Duration::from_millis(
            delay
                .parse()
                .expect("the delay is a number of milliseconds"),
        );
    }
    eprintln!(
        "client id: {}\nclient secret: {}\nX-Country: {}\nX-Currency: {}\ndisbursement PIN: {}",
        config.client_id,
        config.client_secret,
        config.country,
        config.currency,
        config.disbursement_pin
    );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("http://{}", listener.local_addr()?);
    AirtelFake::new(config).serve(listener).await
}
