//! `malipo rails`: the operator's configuration of real rails from the
//! command line, through the same domain service as `/operator/rail-configs`
//! (validated against the rail's spec, credentials sealed, audited as `cli`).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Subcommand;
use malipo_core::{Clock, MasterKey, MerchantId, RailConfigId};
use malipo_payments::rail_configs::{self, RailConfigChange};
use malipo_store::Store;

#[derive(Debug, Subcommand)]
pub enum RailsCommand {
    /// The rails that take a configuration, with their settings and
    /// credentials (* marks the required ones).
    Specs,
    /// Rail configurations: owner, rail, settings, the names of the
    /// credentials set, and whether they open under the master key.
    List {
        /// Only this merchant's (`mer_…`), or `platform`.
        #[arg(long)]
        merchant: Option<String>,
    },
    /// Configure a rail for a merchant (or, without --merchant, the
    /// platform), replacing that owner's configuration of the rail. Settings
    /// and credentials are JSON objects of strings, read from files (`-`:
    /// standard input), so that secrets stay out of the shell's history.
    Configure {
        /// A rail of `malipo rails specs`, e.g. mpesa.
        #[arg(long)]
        rail: String,
        #[arg(long)]
        merchant: Option<String>,
        /// The whole set of settings; omitted: keep the stored ones.
        #[arg(long, value_name = "PATH")]
        settings_file: Option<PathBuf>,
        /// The whole set of credentials; omitted: keep the stored ones.
        #[arg(long, value_name = "PATH")]
        credentials_file: Option<PathBuf>,
        #[arg(long, conflicts_with = "enable")]
        disable: bool,
        #[arg(long)]
        enable: bool,
    },
    /// Delete a configuration (`rc_…`).
    Remove { id: String },
    /// MTN MoMo's sandbox: create an API user and its key (the `api_user`
    /// and `api_key` credentials of a `mtn_momo` configuration). Production
    /// credentials come from MTN's partner portal.
    ProvisionMtnSandbox {
        /// The Collection product's subscription key (Ocp-Apim-Subscription-Key).
        #[arg(long, env = "MTN_SUBSCRIPTION_KEY", hide_env_values = true)]
        subscription_key: String,
        /// The host MTN may send callbacks to: this server's public host.
        #[arg(long)]
        callback_host: String,
        #[arg(long, default_value = "https://sandbox.momodeveloper.mtn.com")]
        base_url: String,
    },
}

const ACTOR: &str = "cli";

fn read_map(path: &Path) -> anyhow::Result<BTreeMap<String, String>> {
    let mut text = String::new();
    if path == Path::new("-") {
        std::io::stdin().read_to_string(&mut text)?;
    } else {
        text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    }
    serde_json::from_str(&text)
        .with_context(|| format!("{} must hold a JSON object of strings", path.display()))
}

/// A `--merchant` filter: a merchant, or `platform`.
fn owner(text: &str) -> anyhow::Result<Option<MerchantId>> {
    if text == "platform" {
        return Ok(None);
    }
    crate::operator::merchant(text).map(Some)
}

pub async fn run(
    store: &Store,
    master_key: &MasterKey,
    clock: &dyn Clock,
    command: RailsCommand,
) -> anyhow::Result<()> {
    match command {
        RailsCommand::Specs => {
            for spec in malipo_rails::config::SPECS {
                println!("{}\t{}", spec.rail, spec.name);
                for (group, fields) in [
                    ("settings", spec.settings),
                    ("credentials", spec.credentials),
                ] {
                    for field in fields {
                        let mark = if field.required { "*" } else { " " };
                        println!(
                            "  {group}.{}{mark}\t{}\t{}",
                            field.name,
                            field.rule.describe(),
                            field.description
                        );
                    }
                }
            }
        }
        RailsCommand::List { merchant } => {
            let filter = merchant.as_deref().map(owner).transpose()?;
            for config in store.list_rail_configs(filter).await? {
                let opens = match rail_configs::open_credentials(master_key, &config) {
                    Ok(_) => "credentials open",
                    Err(_) => "CREDENTIALS DO NOT OPEN",
                };
                println!(
                    "{}\t{}\t{}\t{}\tsettings {}\tcredentials set: {}\t{opens}",
                    config.id,
                    config
                        .merchant_id
                        .map_or_else(|| "platform".to_owned(), |id| id.to_string()),
                    config.rail,
                    if config.enabled {
                        "enabled"
                    } else {
                        "disabled"
                    },
                    serde_json::to_string(&config.settings)?,
                    config.credential_names.join(","),
                );
            }
        }
        RailsCommand::Configure {
            rail,
            merchant,
            settings_file,
            credentials_file,
            disable,
            enable,
        } => {
            if settings_file.as_deref() == Some(Path::new("-"))
                && credentials_file.as_deref() == Some(Path::new("-"))
            {
                bail!("only one of --settings-file and --credentials-file can be `-`");
            }
            let merchant_id = match merchant.as_deref() {
                Some(text) => {
                    let id = crate::operator::merchant(text)?;
                    if store.merchants().find(id).await?.is_none() {
                        bail!("no merchant {id}");
                    }
                    Some(id)
                }
                None => None,
            };
            let change = RailConfigChange {
                merchant_id,
                rail,
                settings: settings_file.as_deref().map(read_map).transpose()?,
                credentials: credentials_file.as_deref().map(read_map).transpose()?,
                enabled: (enable || disable).then_some(enable),
            };
            let record = rail_configs::save(store, master_key, change, ACTOR, clock.now()).await?;
            println!("{}", record.id);
        }
        RailsCommand::ProvisionMtnSandbox {
            subscription_key,
            callback_host,
            base_url,
        } => {
            let (user, key) = malipo_rails::mtn::provision_sandbox_user(
                &base_url,
                &subscription_key,
                &callback_host,
            )
            .await?;
            eprintln!("Created an MTN sandbox API user; its key is shown this once.");
            println!("{}", serde_json::json!({"api_user": user, "api_key": key}));
        }
        RailsCommand::Remove { id } => {
            let id = RailConfigId::parse(&id)
                .with_context(|| format!("`{id}` is not a rail configuration id (rc_…)"))?;
            match store.delete_rail_config(id, ACTOR, clock.now()).await? {
                Some(_) => println!("removed {id}"),
                None => bail!("no rail configuration {id}"),
            }
        }
    }
    Ok(())
}
