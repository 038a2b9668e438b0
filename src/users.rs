//! `sidekick users add|list|token`.

use anyhow::Result;
use clap::Subcommand;
use sidekick_domain::{PhoneNumber, SignupChannel, Timezone};
use sidekick_store::{registry, CommandMeta, Store};

use crate::config::Config;
use crate::serve::connect_db;
use crate::UsageError;

#[derive(Subcommand)]
pub enum UsersCommand {
    /// Register a number (the first text it gets confirms the opt-in). Prints the user id.
    Add {
        #[arg(long)]
        phone: String,
        #[arg(long)]
        name: Option<String>,
        /// IANA timezone, e.g. America/Chicago.
        #[arg(long)]
        timezone: Option<String>,
    },
    /// List registered users.
    List,
    /// Issue an API bearer token for a user. Shown once; only its hash is kept.
    Token {
        #[arg(long)]
        phone: String,
    },
}

pub fn parse_phone(s: &str) -> Result<PhoneNumber> {
    PhoneNumber::parse(s).map_err(|e| UsageError(e.to_string()).into())
}

pub async fn run(config: &Config, command: UsersCommand) -> Result<()> {
    match command {
        UsersCommand::Add {
            phone,
            name,
            timezone,
        } => {
            let phone = parse_phone(&phone)?;
            let timezone = timezone
                .map(|t| Timezone::parse(&t))
                .transpose()
                .map_err(|e| UsageError(e.to_string()))?;
            if name
                .as_deref()
                .is_some_and(|n| n.trim().is_empty() || n.len() > 80)
            {
                return Err(UsageError("--name must be 1 to 80 characters".into()).into());
            }
            let pool = connect_db(config).await?;
            let store = Store::new(pool, config.master_key()?);
            let (user, created) = store
                .register(
                    &phone,
                    name.as_deref(),
                    timezone,
                    SignupChannel::Operator,
                    CommandMeta::new(),
                )
                .await?;
            println!("{user}");
            if !created {
                eprintln!("{} was already registered", phone.masked());
            }
        }
        UsersCommand::List => {
            let pool = connect_db(config).await?;
            let users = registry::list(&pool).await?;
            if users.is_empty() {
                eprintln!("no users yet: `sidekick users add --phone +15551230001`, or text START to the number");
            }
            for (user, phone, created) in users {
                println!("{user}  {phone}  {}", created.format("%Y-%m-%d %H:%M UTC"));
            }
        }
        UsersCommand::Token { phone } => {
            let phone = parse_phone(&phone)?;
            let pool = connect_db(config).await?;
            let Some(user) = registry::user_by_phone(&pool, &phone).await? else {
                return Err(UsageError(format!(
                    "no user has the number {}; add it first with `sidekick users add`",
                    phone.masked()
                ))
                .into());
            };
            println!("{}", registry::issue_token(&pool, user).await?);
        }
    }
    Ok(())
}
