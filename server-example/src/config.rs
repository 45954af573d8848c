//! Command line and environment configuration.

use std::net::SocketAddr;

use clap::{Args, Parser, Subcommand};

/// Default request body limit: 64 KiB.
pub const DEFAULT_BODY_LIMIT: usize = 64 * 1024;

/// Default interval over which a device's validations are coalesced into one write (and one
/// `license.validated` event): 60 seconds.
pub const DEFAULT_TOUCH_INTERVAL_SECS: u64 = 60;

/// How often the validation bookkeeping noted since the last flush is written.
pub const TOUCH_FLUSH_PERIOD: std::time::Duration = std::time::Duration::from_secs(1);

/// Default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// What the HTTP layer needs to know (independent of the backend).
#[derive(Debug, Clone)]
pub struct Config {
    /// Largest accepted request body in bytes; larger bodies get 413.
    pub body_limit: usize,
    /// Seconds over which each device's validations are coalesced into one write of its
    /// timestamps and one `license.validated` event (0: every validation is written).
    pub touch_interval_secs: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            body_limit: DEFAULT_BODY_LIMIT,
            touch_interval_secs: DEFAULT_TOUCH_INTERVAL_SECS,
        }
    }
}

/// `licentia-server`: the Open License v1 API.
#[derive(Debug, Parser)]
#[command(name = "licentia-server", version, about)]
pub struct Cli {
    /// What to do; `serve` when omitted.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Options of `serve`, also accepted without the subcommand.
    #[command(flatten)]
    pub serve: ServeArgs,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the API (the default).
    Serve(ServeArgs),
    /// Signing key maintenance.
    Keys {
        /// The key operation.
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Apply the PostgreSQL migrations (needs DATABASE_URL).
    Migrate(BackendArgs),
}

/// Signing key operations.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Make a new active signing key; earlier keys stay listed as retired.
    Rotate(BackendArgs),
}

/// Where the data lives.
#[derive(Debug, Clone, Args)]
pub struct BackendArgs {
    /// PostgreSQL URL; without it the in-memory backend is used.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Key encrypting the signing keys at rest (PostgreSQL backend).
    #[arg(long, env = "LICENTIA_MASTER_KEY", hide_env_values = true)]
    pub master_key: Option<String>,
}

/// Options of `serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "LICENTIA_LISTEN", default_value = DEFAULT_LISTEN)]
    pub listen: SocketAddr,
    /// Largest accepted request body in bytes.
    #[arg(long, env = "LICENTIA_BODY_LIMIT", default_value_t = DEFAULT_BODY_LIMIT)]
    pub body_limit: usize,
    /// Seconds over which each device's validations are coalesced into one write of its
    /// `last_seen_at`/`last_validated_at` and one `license.validated` event; written behind,
    /// flushed every second (0 writes every validation).
    #[arg(long, env = "LICENTIA_TOUCH_INTERVAL", default_value_t = DEFAULT_TOUCH_INTERVAL_SECS)]
    pub touch_interval: u64,
    /// PostgreSQL connections for the read path (validate, check, offline); default: the
    /// machine's parallelism, at least 2. Writes and management use their own pools.
    #[arg(long, env = "LICENTIA_DB_READ_CONNECTIONS")]
    pub db_read_connections: Option<u32>,
    /// The first admin token's value (`lkm_` + 32 base32 characters), used only when the store
    /// has no token yet.
    #[arg(long, env = "LICENTIA_BOOTSTRAP_TOKEN", hide_env_values = true)]
    pub bootstrap_token: Option<String>,
    /// Storage options.
    #[command(flatten)]
    pub backend: BackendArgs,
}

impl ServeArgs {
    /// The HTTP configuration part.
    pub fn config(&self) -> Config {
        Config {
            body_limit: self.body_limit,
            touch_interval_secs: self.touch_interval,
        }
    }
}
