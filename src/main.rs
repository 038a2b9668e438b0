//! The `sidekick` binary: configuration, wiring and subcommands. Thin on purpose:
//! everything it runs lives in the workspace crates.

mod audit;
mod bench;
mod config;
mod flags;
mod serve;
mod telemetry;
mod text;
mod users;

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(
    name = "sidekick",
    version,
    about = "An SMS-first assistant for people with ADHD"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, ValueEnum)]
pub enum Role {
    All,
    Web,
    Relay,
    Projector,
    Assistant,
    Notifier,
    /// Due reminders, time-box starts and check-ins (several may run: each item fires once).
    Scheduler,
}

#[derive(Subcommand)]
enum Command {
    /// Run Sidekick (every role in one process by default).
    Serve {
        /// Which roles to run; repeat for several.
        #[arg(long = "role", value_enum, default_value = "all")]
        roles: Vec<Role>,
    },
    /// Create the database if missing, apply migrations and the JetStream topology, then exit.
    Migrate,
    /// Manage users.
    Users {
        #[command(subcommand)]
        command: users::UsersCommand,
    },
    /// Send a signed inbound SMS to the running server, as Twilio would, and print the reply.
    Text {
        /// The sender's number (E.164).
        #[arg(long)]
        from: String,
        /// The message text.
        message: String,
        /// How long to wait for the reply, in seconds.
        #[arg(long, default_value_t = 20)]
        timeout: u64,
    },
    /// Rebuild read models from the event store.
    Replay {
        /// sync, or all.
        #[arg(long)]
        projection: String,
        /// Only this user's rows (a user id).
        #[arg(long)]
        user: Option<String>,
    },
    /// A user's event history in order. Sealed text stays sealed unless --reveal.
    Audit {
        /// User id or phone number (E.164).
        #[arg(long)]
        user: String,
        /// Only events at or after this time (RFC 3339).
        #[arg(long)]
        since: Option<String>,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
        /// Open sealed text with the user's key.
        #[arg(long)]
        reveal: bool,
    },
    /// Load-test a server (its own, by default) and compare with this machine's baselines.
    Bench(bench::BenchArgs),
    /// Safety flags: conversations where someone may be in crisis, for a person to follow up.
    Flags {
        #[command(subcommand)]
        command: flags::FlagsCommand,
    },
}

/// A failure with a hint on what to do; printed without a backtrace.
fn report(e: &anyhow::Error) {
    eprintln!("error: {e}");
    for cause in e.chain().skip(1) {
        eprintln!("  caused by: {cause}");
    }
    if std::env::var("RUST_LOG").is_ok_and(|v| v.contains("debug")) {
        eprintln!("{e:?}");
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match config::Config::load() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(2);
        }
    };
    let metrics = telemetry::init(&config);
    let result = match cli.command {
        Command::Serve { roles } => serve::run(config, roles, metrics).await,
        Command::Migrate => serve::migrate(&config).await,
        Command::Users { command } => users::run(&config, command).await,
        Command::Text {
            from,
            message,
            timeout,
        } => text::run(&config, &from, &message, timeout).await,
        Command::Replay { projection, user } => {
            audit::replay(&config, &projection, user.as_deref()).await
        }
        Command::Audit {
            user,
            since,
            json,
            reveal,
        } => audit::audit(&config, &user, since.as_deref(), json, reveal).await,
        Command::Bench(args) => bench::run(&config, args).await,
        Command::Flags { command } => flags::run(&config, command).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            report(&e);
            if e.downcast_ref::<UsageError>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::from(1)
            }
        }
    }
}

/// A mistake in how the command was called (exit code 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);
