//! `malipo fake-rail <rail>`: runs a local fake of an operator's API (see
//! `malipo_fakes`) for a developer: point a rail configuration's `base_url`
//! (or an operator's own client library) at it and try payments without
//! reaching the operator. The phone number's last four digits choose each
//! transaction's outcome; `/__fake/…` shows what it received and sent.

use std::time::Duration;

use anyhow::Context;
use clap::{Args, ValueEnum};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FakeRail {
    /// Safaricom's M-Pesa Daraja API.
    Mpesa,
    /// The MTN MoMo Open API.
    #[value(name = "mtn_momo")]
    MtnMomo,
    /// The Airtel Money Open API.
    #[value(name = "airtel_money")]
    AirtelMoney,
}

#[derive(Debug, Args)]
pub struct FakeRailArgs {
    /// Which operator to fake.
    rail: FakeRail,
    /// Port to listen on, on 127.0.0.1 (0: any free port, printed).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// How long the fake customer takes to answer, in milliseconds.
    #[arg(long, default_value_t = 1_000)]
    callback_delay_ms: u64,
    /// How long an access token lives, in seconds.
    #[arg(long)]
    token_lifetime_secs: Option<u64>,
    /// Airtel only: the callback URL registered in Airtel's portal (Airtel
    /// takes none per request), e.g. http://127.0.0.1:8080/v1/inbound/airtel_money.
    #[arg(long, value_name = "URL")]
    callback_url: Option<String>,
}

pub async fn run(args: FakeRailArgs) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port))
        .await
        .with_context(|| format!("could not listen on 127.0.0.1:{}", args.port))?;
    let address = listener.local_addr()?;
    let delay = Duration::from_millis(args.callback_delay_ms);
    match args.rail {
        FakeRail::Mpesa => {
            let mut config = malipo_fakes::mpesa::MpesaFakeConfig {
                callback_delay: delay,
                ..Default::default()
            };
            if let Some(seconds) = args.token_lifetime_secs {
                config.token_lifetime = Duration::from_secs(seconds);
            }
            println!("Fake M-Pesa Daraja on http://{address}");
            println!(
                "  short code {}, consumer key {}, consumer secret {}, passkey {}",
                config.shortcode, config.consumer_key, config.consumer_secret, config.passkey
            );
            malipo_fakes::mpesa::MpesaFake::new(config)
                .serve(listener)
                .await?;
        }
        FakeRail::MtnMomo => {
            let mut config = malipo_fakes::mtn::MtnFakeConfig {
                callback_delay: delay,
                ..Default::default()
            };
            if let Some(seconds) = args.token_lifetime_secs {
                config.token_lifetime = Duration::from_secs(seconds);
            }
            println!("Fake MTN MoMo Open API on http://{address}");
            println!(
                "  collection subscription key {}, disbursement subscription key {}, target environment {}",
                config.collection_subscription_key,
                config.disbursement_subscription_key,
                config.target_environment
            );
            malipo_fakes::mtn::MtnFake::new(config)
                .serve(listener)
                .await?;
        }
        FakeRail::AirtelMoney => {
            let mut config = malipo_fakes::airtel::AirtelFakeConfig {
                callback_delay: delay,
                callback_url: args.callback_url.clone(),
                ..Default::default()
            };
            if let Some(seconds) = args.token_lifetime_secs {
                config.token_lifetime = Duration::from_secs(seconds);
            }
            println!("Fake Airtel Money Open API on http://{address}");
            println!(
                "  client id {}, client secret {}, country {}, currency {}, disbursement PIN {}",
                config.client_id,
                config.client_secret,
                config.country,
                config.currency,
                config.disbursement_pin
            );
            malipo_fakes::airtel::AirtelFake::new(config)
                .serve(listener)
                .await?;
        }
    }
    Ok(())
}
