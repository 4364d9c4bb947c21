use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use malipo::app::{self, Application};
use malipo::{Config, FlagOverrides, LogFormat};
use malipo_core::{ApiKeyId, Clock, KeyToken, MerchantId, Mode, Scopes, SystemClock};
use malipo_store::{NewApiKey, PageRequest, Store, Tenant};
use tracing_subscriber::EnvFilter;

mod bench;
mod bench_http;
mod bench_plans;
mod bench_webhooks;
mod fake_rail;
mod listen;
mod operator;
mod rail_configs;

/// Malipo: a self-hostable payments platform for African mobile money.
///
/// One binary serves the merchant API, hosted pages and the workers that
/// move money. With no configuration it keeps its data in `malipo.db` (SQLite)
/// in the working directory; set DATABASE_URL=postgres://… for PostgreSQL.
#[derive(Debug, Parser)]
#[command(name = "malipo", version, about, long_about)]
struct Cli {
    /// A TOML file of settings (see the README for every key).
    #[arg(long, global = true, env = "MALIPO_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,

    /// Database to use: `sqlite:PATH` (or a bare path) or `postgres://…`.
    /// Default: malipo.db in the working directory.
    #[arg(long, global = true, value_name = "URL")]
    database_url: Option<String>,

    /// Log line format (logs go to standard error).
    #[arg(long, global = true, value_enum, value_name = "FORMAT")]
    log_format: Option<LogFormat>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP server (migrates the database first). On the first start
    /// against an empty database, creates a sandbox merchant and prints its
    /// test key once, on a line of its own.
    Serve {
        /// Address to listen on [env: MALIPO_LISTEN] [default: 127.0.0.1:8080]
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
    },
    /// Apply pending database migrations and exit.
    Migrate,
    /// Manage merchants (the tenants whose data every query is scoped by).
    #[command(subcommand)]
    Merchants(MerchantsCommand),
    /// Settlement entities: the operator's KYC decision (audited).
    #[command(subcommand)]
    Entities(EntitiesCommand),
    /// Manage API keys. A key's secret is shown once, at creation.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Dashboard users: create a merchant's user with a temporary password.
    #[command(subcommand)]
    Users(UsersCommand),
    /// Secrets at rest: re-seal them under a new master key.
    #[command(subcommand)]
    Secrets(SecretsCommand),
    /// OAuth 2 client credentials: create a client, rotate the token signing key.
    #[command(subcommand)]
    Oauth(OauthCommand),
    /// The ledger: check its invariants, adjust a balance, reverse a transfer.
    #[command(subcommand)]
    Ledger(operator::LedgerCommand),
    /// Fee schedules: set and list.
    #[command(subcommand)]
    Fees(operator::FeesCommand),
    /// Exchange rates: set and list.
    #[command(subcommand)]
    Fx(operator::FxCommand),
    /// Real rails' configurations (settings, sealed credentials) per
    /// merchant or platform-wide: specs, list, configure, remove. Audited.
    #[command(subcommand)]
    Rails(rail_configs::RailsCommand),
    /// The tamper-evident audit log.
    #[command(subcommand)]
    Audit(operator::AuditCommand),
    /// Benchmarks (they use a scratch SQLite database unless --database-url is given).
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Print the OpenAPI 3.1 document of the HTTP API.
    Openapi,
    /// Run a local fake of an operator's API (M-Pesa Daraja, MTN MoMo,
    /// Airtel Money) to
    /// try the real rails' connectors without the operator.
    FakeRail(fake_rail::FakeRailArgs),
    /// Forward this merchant's events from a running Malipo to a local URL,
    /// signed (for developing a webhook receiver).
    Listen(listen::ListenArgs),
}

#[derive(Debug, Subcommand)]
enum MerchantsCommand {
    /// Create a merchant and print its id.
    Create {
        /// The merchant's display name.
        #[arg(long)]
        name: String,
    },
    /// List all merchants.
    List,
    /// Allow a merchant's live payouts (test mode never needs this). Audited.
    ApprovePayouts {
        /// The merchant, `mer_…`.
        merchant: String,
    },
    /// Set a merchant's own API rate limit (requests per second per key or
    /// OAuth client, bursts of twice that), or `--default` to use the
    /// configured one. Audited; nodes apply it within 30 seconds.
    SetRateLimit {
        /// The merchant, `mer_…`.
        merchant: String,
        #[arg(long, conflicts_with = "default", required_unless_present = "default")]
        per_second: Option<u32>,
        #[arg(long)]
        default: bool,
    },
}

#[derive(Debug, Subcommand)]
enum EntitiesCommand {
    /// Approve an entity's KYC: live references and settlements may use it.
    Approve {
        /// The entity, `ent_…`.
        entity: String,
        /// Why (kept in the audit log).
        #[arg(long)]
        reason: Option<String>,
    },
    /// Reject an entity's KYC: nothing live is referenced or settled for it.
    Reject {
        /// The entity, `ent_…`.
        entity: String,
        /// Why (kept in the audit log).
        #[arg(long)]
        reason: String,
    },
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Create a key and print it (shown this once).
    Create(CreateKeyArgs),
    /// List a merchant's keys (never their secrets).
    List {
        /// The merchant, `mer_…`.
        #[arg(long)]
        merchant: String,
        /// Only keys of this mode (default: both).
        #[arg(long)]
        mode: Option<ModeArg>,
    },
    /// Revoke a key; it stops working at once.
    Revoke {
        /// The key's id, `key_…`.
        key_id: String,
    },
}

#[derive(Debug, Args)]
struct CreateKeyArgs {
    /// The merchant, `mer_…`.
    #[arg(long)]
    merchant: String,
    /// `test` keys see sandbox data; `live` keys move real money.
    #[arg(long, default_value = "test")]
    mode: ModeArg,
    /// What the key is for.
    #[arg(long, default_value = "CLI key")]
    name: String,
    /// A scope to grant, e.g. `payments:write`; repeat for more. Default: `*` (all).
    #[arg(long = "scope", value_name = "SCOPE")]
    scopes: Vec<String>,
}

#[derive(Debug, Subcommand)]
enum UsersCommand {
    /// Create a dashboard user and print a temporary password (shown this
    /// once): the first sign-in must replace it, then enrol a second factor.
    Create {
        /// The merchant, `mer_…`.
        #[arg(long)]
        merchant: String,
        /// The user's email, which they sign in with.
        #[arg(long)]
        email: String,
        /// `owner`, `developer` or `viewer`.
        #[arg(long, default_value = "owner")]
        role: String,
    },
}

#[derive(Debug, Subcommand)]
enum SecretsCommand {
    /// Re-seal every secret Malipo keeps (webhook signing secrets, token
    /// signing keys, TOTP secrets, rail credentials, replays of responses
    /// that showed a secret) under a new master key, in one transaction, audited. Stop
    /// every node first, then start them all with the new key. The file is
    /// created with a new random key if it does not exist.
    RotateMasterKey {
        /// The new key's file (base64, 32 bytes), as `master_key_file` reads it.
        #[arg(long, value_name = "PATH")]
        new_key_file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum OauthCommand {
    /// Create an OAuth client and print its id and secret (shown this once).
    CreateClient(CreateKeyArgs),
    /// Sign new access tokens with a new key. The old keys are retired: they
    /// go on verifying the tokens they signed until those expire. Audited.
    RotateSigningKey,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ModeArg {
    Test,
    Live,
}

impl From<ModeArg> for Mode {
    fn from(mode: ModeArg) -> Self {
        match mode {
            ModeArg::Test => Mode::Test,
            ModeArg::Live => Mode::Live,
        }
    }
}

fn init_logging(config: &Config) -> anyhow::Result<()> {
    let filter = EnvFilter::try_new(&config.log_filter)
        .with_context(|| format!("log_filter `{}` is not a valid filter", config.log_filter))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match config.log_format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .init(),
        LogFormat::Text => builder.init(),
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let flags = FlagOverrides {
        listen: match &cli.command {
            Command::Serve { listen } => listen.clone(),
            _ => None,
        },
        database_url: cli.database_url.clone(),
        log_format: cli.log_format,
    };
    let config = Config::load(cli.config.as_deref(), &flags)
        .map_err(|e| anyhow::anyhow!("configuration: {e}"))?;
    init_logging(&config)?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    match cli.command {
        Command::Serve { .. } => serve(&config, clock).await,
        Command::Migrate => {
            let store = app::connect_store(&config).await?;
            store.close().await;
            println!("database is up to date");
            Ok(())
        }
        Command::Merchants(command) => merchants(&config, clock.as_ref(), command).await,
        Command::Entities(command) => entities(&config, clock.as_ref(), command).await,
        Command::Keys(command) => keys(&config, clock.as_ref(), command).await,
        Command::Oauth(command) => oauth(&config, clock.as_ref(), command).await,
        Command::Users(command) => users(&config, clock.as_ref(), command).await,
        Command::Secrets(SecretsCommand::RotateMasterKey { new_key_file }) => {
            rotate_master_key(&config, clock.as_ref(), &new_key_file).await
        }
        Command::Ledger(command) => {
            with_store(&config, async |store| {
                operator::ledger(store, clock.as_ref(), command).await
            })
            .await
        }
        Command::Fees(command) => {
            with_store(&config, async |store| {
                operator::fees(store, clock.as_ref(), command).await
            })
            .await
        }
        Command::Fx(command) => {
            with_store(&config, async |store| {
                operator::fx(store, clock.as_ref(), command).await
            })
            .await
        }
        Command::Rails(command) => {
            let master_key = app::load_master_key(&config)?;
            with_store(&config, async |store| {
                rail_configs::run(store, &master_key, clock.as_ref(), command).await
            })
            .await
        }
        Command::Audit(command) => {
            with_store(&config, async |store| operator::audit(store, command).await).await
        }
        Command::Bench(command) => bench::run(cli.database_url, command).await,
        Command::Openapi => {
            println!("{}", malipo_api::openapi().to_pretty_json()?);
            Ok(())
        }
        Command::Listen(args) => listen::run(args).await,
        Command::FakeRail(args) => fake_rail::run(args).await,
    }
}

/// Runs `work` against the migrated database, then closes it, whatever
/// the outcome.
async fn with_store(
    config: &Config,
    work: impl AsyncFnOnce(&Store) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let store = app::connect_store(config).await?;
    let result = work(&store).await;
    store.close().await;
    result
}

async fn serve(config: &Config, clock: Arc<dyn Clock>) -> anyhow::Result<()> {
    let mut application = Application::build(config, clock).await?;
    if let Some(sandbox) = application.sandbox.take() {
        // Printed, not logged: the key must appear once, here, and nowhere else.
        println!(
            "Created sandbox merchant {}. Its test secret key, shown this once:",
            sandbox.merchant_id
        );
        println!("{}", sandbox.key.reveal());
        println!(
            "Try: curl -H \"Authorization: Bearer <key>\" http://{}/v1/account",
            application.local_addr()
        );
    }
    application.run_until_stopped(shutdown_signal()).await
}

async fn shutdown_signal() {
    let interrupt = async {
        tokio::signal::ctrl_c()
            .await
            .expect("the SIGINT handler installs");
    };
    #[cfg(unix)]
    let terminate = async {
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("the SIGTERM handler installs")
            .recv()
            .await;
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
    tracing::info!("shutdown signal received; finishing requests in flight");
}

fn parse_merchant(text: &str) -> anyhow::Result<MerchantId> {
    MerchantId::parse(text).with_context(|| format!("`{text}` is not a merchant id (mer_…)"))
}

async fn merchants(
    config: &Config,
    clock: &dyn Clock,
    command: MerchantsCommand,
) -> anyhow::Result<()> {
    let store = app::connect_store(config).await?;
    match command {
        MerchantsCommand::Create { name } => {
            let name = name.trim();
            if name.is_empty() {
                bail!("--name must not be empty");
            }
            let merchant = store.merchants().create(name, "cli", clock.now()).await?;
            println!("{}", merchant.id);
        }
        MerchantsCommand::SetRateLimit {
            merchant,
            per_second,
            default: _,
        } => {
            let merchant_id = parse_merchant(&merchant)?;
            let per_second = per_second.map(i64::from);
            if !store
                .merchants()
                .set_rate_limit(merchant_id, per_second, "cli", clock.now())
                .await?
            {
                bail!("no merchant {merchant_id}");
            }
            match per_second {
                Some(rate) => println!("{merchant_id}: {rate} requests per second per credential"),
                None => println!("{merchant_id}: the configured rate limit"),
            }
        }
        MerchantsCommand::ApprovePayouts { merchant } => {
            let merchant_id = parse_merchant(&merchant)?;
            if store.merchants().find(merchant_id).await?.is_none() {
                bail!("no merchant {merchant_id}");
            }
            let changed = store
                .merchants()
                .approve_payouts(merchant_id, "cli", clock.now())
                .await?;
            println!(
                "{merchant_id}: live payouts approved{}",
                if changed { "" } else { " (already)" }
            );
        }
        MerchantsCommand::List => {
            for merchant in store.merchants().list().await? {
                println!(
                    "{}\t{}\t{}",
                    merchant.id, merchant.created_at, merchant.name
                );
            }
        }
    }
    store.close().await;
    Ok(())
}

async fn entities(
    config: &Config,
    clock: &dyn Clock,
    command: EntitiesCommand,
) -> anyhow::Result<()> {
    let (entity, status, reason) = match command {
        EntitiesCommand::Approve { entity, reason } => (entity, "approved", reason),
        EntitiesCommand::Reject { entity, reason } => (entity, "rejected", Some(reason)),
    };
    let id = malipo_core::EntityId::parse(&entity)
        .with_context(|| format!("`{entity}` is not an entity id (ent_…)"))?;
    let store = app::connect_store(config).await?;
    let result = store
        .set_entity_kyc(id, status, reason.as_deref(), "cli", clock.now())
        .await;
    store.close().await;
    match result? {
        Some(entity) => println!("{}: KYC {status} ({})", entity.id, entity.name),
        None => bail!("no entity {id}"),
    }
    Ok(())
}

async fn rotate_master_key(
    config: &Config,
    clock: &dyn Clock,
    new_key_file: &std::path::Path,
) -> anyhow::Result<()> {
    let old = app::load_master_key(config)?;
    if !new_key_file.exists() {
        app::write_new_key_file(new_key_file)?;
        eprintln!("Created a new master key in {}.", new_key_file.display());
    }
    let text = std::fs::read_to_string(new_key_file)
        .with_context(|| format!("could not read {}", new_key_file.display()))?;
    let new = malipo_core::MasterKey::from_base64(&text)
        .with_context(|| format!("the key in {}", new_key_file.display()))?;
    if new.open(&old.seal(b"same?")).is_ok() {
        bail!("the new key is the current one");
    }
    let store = app::connect_store(config).await?;
    let reseal = |sealed: &[u8]| old.open(sealed).ok().map(|plain| new.seal(&plain));
    let result = store.reseal_secrets(&reseal, "cli", clock.now()).await;
    store.close().await;
    let report = result?.map_err(|problem| {
        anyhow::anyhow!("{problem}: nothing was changed (is the configured key the current one?)")
    })?;
    for (table, count) in &report.counts {
        println!("{table}\t{count}");
    }
    eprintln!(
        "Every secret is now sealed under the key in {}. Start every node with it \
         (master_key_file or MALIPO_MASTER_KEY); the old key opens nothing any more. \
         Hosted-page links and sandbox transactions made before were signed with the old \
         key and no longer verify.",
        new_key_file.display()
    );
    Ok(())
}

async fn users(config: &Config, clock: &dyn Clock, command: UsersCommand) -> anyhow::Result<()> {
    let UsersCommand::Create {
        merchant,
        email,
        role,
    } = command;
    let merchant_id = parse_merchant(&merchant)?;
    let email = email.trim().to_lowercase();
    if !(3..=254).contains(&email.len())
        || !email.contains('@')
        || email.contains(char::is_whitespace)
    {
        bail!("--email: `{email}` is not an email address");
    }
    if !["owner", "developer", "viewer"].contains(&role.as_str()) {
        bail!("--role must be owner, developer or viewer");
    }
    let store = app::connect_store(config).await?;
    let result = async {
        if store.merchants().find(merchant_id).await?.is_none() {
            bail!("no merchant {merchant_id}");
        }
        let password = malipo_api::dashboard::temporary_password();
        let now = clock.now();
        let user = malipo_store::UserRecord {
            id: malipo_core::UserId::generate(),
            merchant_id,
            email: email.clone(),
            role,
            password_hash: malipo_api::dashboard::hash_password(&password),
            must_change_password: true,
            totp_secret_sealed: None,
            totp_enabled: false,
            totp_last_step: None,
            sms_phone: None,
            sms_enabled: false,
            failed_attempts: 0,
            locked_until: None,
            created_at: now,
            updated_at: now,
        };
        if !store.create_user(&user, "cli").await? {
            bail!("a user with the email {email} exists already");
        }
        eprintln!(
            "Created user {} ({email}). Its temporary password, shown this once:",
            user.id
        );
        println!("{password}");
        Ok(())
    }
    .await;
    store.close().await;
    result
}

async fn oauth(config: &Config, clock: &dyn Clock, command: OauthCommand) -> anyhow::Result<()> {
    let store = app::connect_store(config).await?;
    let result = run_oauth(config, &store, clock, command).await;
    store.close().await;
    result
}

async fn run_oauth(
    config: &Config,
    store: &Store,
    clock: &dyn Clock,
    command: OauthCommand,
) -> anyhow::Result<()> {
    match command {
        OauthCommand::CreateClient(args) => {
            let (tenant, name, scopes) = credential_args(store, &args).await?;
            let (secret, secret_hash) = malipo_api::oauth::generate_client_secret();
            let client = store
                .create_oauth_client(
                    &malipo_store::NewOAuthClient {
                        id: malipo_core::OAuthClientId::generate(),
                        tenant,
                        name,
                        secret_hash,
                        scopes,
                        created_at: clock.now(),
                    },
                    "cli",
                )
                .await?;
            eprintln!(
                "Created OAuth client {}. Its client_id, then its client_secret (shown this once):",
                client.id
            );
            println!("{}", client.id);
            println!("{secret}");
        }
        OauthCommand::RotateSigningKey => {
            let tokens = malipo_api::oauth::Tokens::new(
                store.clone(),
                app::load_master_key(config)?,
                config.oauth_token_ttl()?,
            );
            let (kid, sealed) = tokens.new_key();
            store
                .rotate_signing_key(&kid, &sealed, "cli", clock.now())
                .await?;
            println!("{kid}");
            eprintln!(
                "New tokens are signed with {kid}; nodes pick it up within a minute. Tokens already \
                 issued stay valid until they expire."
            );
        }
    }
    Ok(())
}

/// A credential's merchant, mode, name and scopes from the command line.
async fn credential_args(
    store: &Store,
    args: &CreateKeyArgs,
) -> anyhow::Result<(Tenant, String, Scopes)> {
    let merchant_id = parse_merchant(&args.merchant)?;
    if store.merchants().find(merchant_id).await?.is_none() {
        bail!("no merchant {merchant_id}");
    }
    let scopes = if args.scopes.is_empty() {
        Scopes::All
    } else {
        Scopes::parse_list(args.scopes.iter().map(String::as_str))?
    };
    let name = malipo_api::v1::api_keys::parse_key_name(&args.name)
        .map_err(|error| anyhow::anyhow!("--name: {}", error.message))?;
    let mode = Mode::from(args.mode);
    Ok((Tenant { merchant_id, mode }, name, scopes))
}

async fn keys(config: &Config, clock: &dyn Clock, command: KeysCommand) -> anyhow::Result<()> {
    let store = app::connect_store(config).await?;
    let result = run_keys(&store, clock, command).await;
    store.close().await;
    result
}

async fn run_keys(store: &Store, clock: &dyn Clock, command: KeysCommand) -> anyhow::Result<()> {
    match command {
        KeysCommand::Create(args) => {
            let (tenant, name, scopes) = credential_args(store, &args).await?;
            let Tenant { merchant_id, mode } = tenant;
            let id = ApiKeyId::generate();
            let token = KeyToken::generate(mode, id);
            store
                .api_keys(tenant)
                .create(
                    &NewApiKey {
                        id,
                        merchant_id,
                        mode,
                        name,
                        secret_hash: token.secret_hash(),
                        scopes,
                        created_at: clock.now(),
                    },
                    "cli",
                )
                .await?;
            eprintln!("Created {id}. The key is shown this once:");
            println!("{}", token.reveal());
        }
        KeysCommand::List { merchant, mode } => {
            let merchant_id = parse_merchant(&merchant)?;
            let modes = match mode {
                Some(mode) => vec![Mode::from(mode)],
                None => vec![Mode::Test, Mode::Live],
            };
            for mode in modes {
                let mut page = PageRequest {
                    limit: 100,
                    starting_after: None,
                };
                loop {
                    let keys = store
                        .api_keys(Tenant { merchant_id, mode })
                        .list(&page)
                        .await?;
                    for key in &keys.rows {
                        let state = match key.revoked_at {
                            Some(at) => format!("revoked {at}"),
                            None => "active".to_owned(),
                        };
                        println!(
                            "{}\t{}\t{}\t{}\t{}",
                            key.id,
                            mode,
                            state,
                            key.scopes.to_stored(),
                            key.name
                        );
                    }
                    match (keys.has_more, keys.rows.last()) {
                        (true, Some(last)) => page.starting_after = Some(last.id.to_string()),
                        _ => break,
                    }
                }
            }
        }
        KeysCommand::Revoke { key_id } => {
            let id = ApiKeyId::parse(&key_id)
                .with_context(|| format!("`{key_id}` is not a key id (key_…)"))?;
            let key = store
                .find_key_for_auth(id)
                .await?
                .with_context(|| format!("no key {id}"))?;
            store
                .api_keys(key.record.tenant())
                .revoke(id, "cli", clock.now())
                .await?;
            println!("revoked {id}");
        }
    }
    Ok(())
}
