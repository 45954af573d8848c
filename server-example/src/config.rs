//! Command line and environment configuration.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use ipnet::IpNet;

use crate::ratelimit::RateLimits;
use crate::transport::Limits;
use crate::webhooks::WebhookConfig;

/// Default request body limit: 64 KiB.
pub const DEFAULT_BODY_LIMIT: usize = 64 * 1024;

/// Default interval over which a device's validations are coalesced into one write (and one
/// `license.validated` event): 60 seconds.
pub const DEFAULT_TOUCH_INTERVAL_SECS: u64 = 60;

/// How often the validation bookkeeping noted since the last flush is written.
pub const TOUCH_FLUSH_PERIOD: std::time::Duration = std::time::Duration::from_secs(1);

/// Default time an idempotency record is kept: 24 hours.
pub const DEFAULT_IDEMPOTENCY_TTL_SECS: u64 = 24 * 60 * 60;

/// Default time a telemetry record is kept: 90 days.
pub const DEFAULT_TELEMETRY_RETENTION_SECS: u64 = 90 * 24 * 60 * 60;

/// Default life of a device session unless it is used: 7 days.
pub const DEFAULT_SESSION_TTL_SECS: u64 = 7 * 24 * 60 * 60;

/// How often housekeeping runs (idempotency purge, rate-limit tables).
pub const HOUSEKEEPING_PERIOD: std::time::Duration = std::time::Duration::from_secs(60);

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
    /// Timeouts and the connection cap ([`crate::transport`]).
    pub limits: Limits,
    /// Rate limits ([`crate::ratelimit`]); `None` turns them off.
    pub rate_limits: Option<RateLimits>,
    /// Proxies whose `X-Forwarded-For` is believed ([`crate::client_ip`]).
    pub trusted_proxies: Vec<IpNet>,
    /// Whether webhook URLs may name private, loopback and link-local addresses.
    pub webhook_allow_private: bool,
    /// Seconds an idempotency record is kept before it is purged (then its key is new).
    pub idempotency_ttl_secs: u64,
    /// Whether `/metrics` is served elsewhere ([`crate::metrics_router`]) instead of on the
    /// API's router.
    pub metrics_separate: bool,
    /// How webhook deliveries are sent ([`crate::webhooks`]).
    pub webhooks: WebhookConfig,
    /// Seconds a telemetry record is kept before it is purged.
    pub telemetry_retention_secs: u64,
    /// Seconds a device session lasts unless used (extended while it is).
    pub session_ttl_secs: u64,
    /// Where artifacts' bytes are and how they are served ([`crate::artifacts`]).
    pub artifacts: ArtifactConfig,
}

/// Release artifacts' storage and downloads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactConfig {
    /// The artifact store: `file:///absolute/path` (created when missing), `s3://bucket`
    /// or `s3://bucket/prefix` (an S3-compatible store configured by the standard `AWS_*`
    /// variables, `AWS_ENDPOINT` for one that is not AWS), or `memory://` (nothing kept
    /// across restarts). Empty: `file://` under the system's temporary
    /// directory, `licentia-artifacts`.
    pub url: String,
    /// Seconds a download token is good for.
    pub download_ttl_secs: u64,
    /// Largest artifact uploaded as a raw body (`application/octet-stream`), in bytes.
    pub upload_limit: usize,
    /// Time a raw upload's body may take to arrive.
    pub upload_timeout: Duration,
    /// Raw uploads read at once (each is held in memory until stored); more wait.
    pub concurrent_uploads: usize,
}

/// Default [`ArtifactConfig::download_ttl_secs`]: 5 minutes.
pub const DEFAULT_DOWNLOAD_TTL_SECS: u64 = 300;
/// Default [`ArtifactConfig::upload_limit`]: 256 MiB.
pub const DEFAULT_ARTIFACT_UPLOAD_LIMIT: usize = 256 * 1024 * 1024;
/// Default [`ArtifactConfig::upload_timeout`]: 15 minutes.
pub const DEFAULT_ARTIFACT_UPLOAD_TIMEOUT_SECS: u64 = 15 * 60;
/// Default [`ArtifactConfig::concurrent_uploads`].
pub const DEFAULT_CONCURRENT_UPLOADS: usize = 2;

impl Default for ArtifactConfig {
    fn default() -> Self {
        Self {
            url: String::new(),
            download_ttl_secs: DEFAULT_DOWNLOAD_TTL_SECS,
            upload_limit: DEFAULT_ARTIFACT_UPLOAD_LIMIT,
            upload_timeout: Duration::from_secs(DEFAULT_ARTIFACT_UPLOAD_TIMEOUT_SECS),
            concurrent_uploads: DEFAULT_CONCURRENT_UPLOADS,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            body_limit: DEFAULT_BODY_LIMIT,
            touch_interval_secs: DEFAULT_TOUCH_INTERVAL_SECS,
            limits: Limits::default(),
            rate_limits: Some(RateLimits::default()),
            trusted_proxies: Vec::new(),
            webhook_allow_private: false,
            idempotency_ttl_secs: DEFAULT_IDEMPOTENCY_TTL_SECS,
            metrics_separate: false,
            webhooks: WebhookConfig::default(),
            telemetry_retention_secs: DEFAULT_TELEMETRY_RETENTION_SECS,
            session_ttl_secs: DEFAULT_SESSION_TTL_SECS,
            artifacts: ArtifactConfig::default(),
        }
    }
}

/// On or off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Switch {
    /// On.
    On,
    /// Off.
    Off,
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
    Serve(Box<ServeArgs>),
    /// Signing key maintenance.
    Keys {
        /// The key operation.
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Apply the PostgreSQL migrations (needs DATABASE_URL).
    Migrate(BackendArgs),
    /// Verify a signed runtime answer against a public key set, offline: `verify --keys
    /// keys.json answer.json` (keys.json: what `GET /api/v1/system/public-keys` answered).
    Verify(VerifyArgs),
    /// Management tokens on the configured store: the way back in when the admin token is
    /// lost (needs DATABASE_URL: the memory backend has no store outside a running server).
    Tokens {
        /// The token operation.
        #[command(subcommand)]
        command: TokensCommand,
    },
    /// Management users on the configured store: invitations and password resets, each
    /// printing a one-time token to hand over (no mail server needed; needs DATABASE_URL).
    Users {
        /// The user operation.
        #[command(subcommand)]
        command: UsersCommand,
    },
}

/// Management user operations.
#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Invite a user and print the invitation token (good for 7 days); the person sets a
    /// password with it (`POST /api/v1/auth/password`).
    Invite {
        /// The user's e-mail address.
        #[arg(long)]
        email: String,
        /// owner, admin, support or billing.
        #[arg(long)]
        role: String,
        /// Storage options.
        #[command(flatten)]
        backend: BackendArgs,
    },
    /// Print a password reset token for a user (good for 1 hour; a fresh invitation for a
    /// user who has not accepted yet).
    ResetPassword {
        /// The user's e-mail address.
        #[arg(long)]
        email: String,
        /// Storage options.
        #[command(flatten)]
        backend: BackendArgs,
    },
}

/// Options of `verify`.
#[derive(Debug, Clone, Args)]
pub struct VerifyArgs {
    /// The public key set: the body of `GET /api/v1/system/public-keys` (`{"data":[…]}`), or
    /// its `data` array alone.
    #[arg(long)]
    pub keys: std::path::PathBuf,
    /// The signed answer (`{"data","signature","meta"}`); `-` or nothing reads standard input.
    pub answer: Option<std::path::PathBuf>,
}

/// Management token operations.
#[derive(Debug, Subcommand)]
pub enum TokensCommand {
    /// Create a token and print it once.
    Create {
        /// A scope it grants (repeatable), e.g. `admin`, `license:read`.
        #[arg(long = "scope", required = true)]
        scopes: Vec<String>,
        /// Its name.
        #[arg(long, default_value = "cli")]
        name: String,
        /// Storage options.
        #[command(flatten)]
        backend: BackendArgs,
    },
    /// List tokens (never their values).
    List {
        /// Storage options.
        #[command(flatten)]
        backend: BackendArgs,
    },
    /// Revoke a token by id (`key_…`); the last usable admin token is kept.
    Revoke {
        /// The token's id.
        id: String,
        /// Storage options.
        #[command(flatten)]
        backend: BackendArgs,
    },
}

/// Signing key operations.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Make a new signing key: published at once, signing after `--activate-in`; earlier keys
    /// stay listed (retired) so their signatures still verify. Needs DATABASE_URL.
    Rotate(RotateArgs),
}

/// Options of `keys rotate`.
#[derive(Debug, Clone, Args)]
pub struct RotateArgs {
    /// Seconds between publishing the new key and signing with it. Every running server
    /// lists it within 5 s, so anything above that means no client ever sees a signature by a
    /// key it cannot fetch; 0 switches at once.
    #[arg(long, default_value_t = 60)]
    pub activate_in: u64,
    /// Rotate this product's own key ring (its code or id) instead of the global ring. The
    /// product must sign with its own keys (`"signing": "product"` on the product).
    #[arg(long, value_name = "CODE")]
    pub product: Option<String>,
    /// Storage options.
    #[command(flatten)]
    pub backend: BackendArgs,
}

/// Where the data lives.
#[derive(Debug, Clone, Args)]
pub struct BackendArgs {
    /// PostgreSQL URL; without it the in-memory backend is used.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Key sealing signing seeds and webhook secrets at rest (base64 of 32 random bytes);
    /// required on PostgreSQL.
    #[arg(long, env = "LICENTIA_MASTER_KEY", hide_env_values = true)]
    pub master_key: Option<String>,
    /// Run on PostgreSQL without a master key, storing signing seeds and webhook secrets in
    /// the clear (development only).
    #[arg(long, env = "LICENTIA_ALLOW_PLAINTEXT_KEYS", value_parser = clap::builder::BoolishValueParser::new(), default_value_t = false, num_args = 0..=1, default_missing_value = "true")]
    pub allow_plaintext_keys: bool,
}

/// Options of `serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on: `host:port`, the host a name (`localhost:8080`) or an address.
    #[arg(long, env = "LICENTIA_LISTEN", default_value = DEFAULT_LISTEN)]
    pub listen: String,
    /// Largest accepted request body in bytes.
    #[arg(long, env = "LICENTIA_BODY_LIMIT", default_value_t = DEFAULT_BODY_LIMIT)]
    pub body_limit: usize,
    /// Seconds over which each device's validations are coalesced into one write of its
    /// `last_seen_at`/`last_validated_at` and one `license.validated` event; written behind,
    /// flushed every second (0 writes every validation).
    #[arg(long, env = "LICENTIA_TOUCH_INTERVAL", default_value_t = DEFAULT_TOUCH_INTERVAL_SECS)]
    pub touch_interval: u64,
    /// Seconds a request head may take from its first byte; then the connection is closed.
    #[arg(long, env = "LICENTIA_HEAD_TIMEOUT", default_value_t = secs(crate::transport::DEFAULT_HEAD_TIMEOUT))]
    pub head_timeout: u64,
    /// Seconds a whole request body may take; then 408 and the connection is closed.
    #[arg(long, env = "LICENTIA_BODY_TIMEOUT", default_value_t = secs(crate::transport::DEFAULT_BODY_TIMEOUT))]
    pub body_timeout: u64,
    /// Seconds a kept-alive connection may wait for its next request.
    #[arg(long, env = "LICENTIA_IDLE_TIMEOUT", default_value_t = secs(crate::transport::DEFAULT_IDLE_TIMEOUT))]
    pub idle_timeout: u64,
    /// Connections open at once (lowered to what the open-file limit holds).
    #[arg(long, env = "LICENTIA_MAX_CONNECTIONS", default_value_t = crate::transport::DEFAULT_MAX_CONNECTIONS)]
    pub max_connections: usize,
    /// Seconds open connections get to finish after the shutdown signal.
    #[arg(long, env = "LICENTIA_SHUTDOWN_GRACE", default_value_t = secs(crate::transport::DEFAULT_SHUTDOWN_GRACE))]
    pub shutdown_grace: u64,
    /// Rate limits per credential and, for failed authentication, per client address.
    #[arg(long, env = "LICENTIA_RATE_LIMIT", value_enum, default_value = "on")]
    pub rate_limit: Switch,
    /// Requests a second per license key or token (bursts of twice that).
    #[arg(long, env = "LICENTIA_RATE_LIMIT_PER_CREDENTIAL", default_value_t = crate::ratelimit::DEFAULT_PER_CREDENTIAL_PER_SECOND)]
    pub rate_limit_per_credential: u32,
    /// Failed authentications a client address may make before it is refused (429); one
    /// more is allowed every 6 s.
    #[arg(long, env = "LICENTIA_RATE_LIMIT_FAILED_AUTH", default_value_t = crate::ratelimit::DEFAULT_FAILED_AUTH_BURST)]
    pub rate_limit_failed_auth: u32,
    /// A proxy (CIDR or address) whose `X-Forwarded-For` is believed; repeat it, or
    /// comma-separate the variable.
    #[arg(long = "trusted-proxy", env = "LICENTIA_TRUSTED_PROXIES", value_delimiter = ',', value_parser = parse_net)]
    pub trusted_proxies: Vec<IpNet>,
    /// Seconds an idempotency record is kept (a replay within it gets the stored answer);
    /// purged in the background after that, when the key becomes a new request.
    #[arg(long, env = "LICENTIA_IDEMPOTENCY_TTL", default_value_t = DEFAULT_IDEMPOTENCY_TTL_SECS)]
    pub idempotency_ttl: u64,
    /// Serve `/metrics` on this address instead of the API's.
    #[arg(long, env = "LICENTIA_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// Accept webhook URLs on private, loopback and link-local addresses (local testing).
    #[arg(long, env = "LICENTIA_WEBHOOK_ALLOW_PRIVATE", value_parser = clap::builder::BoolishValueParser::new(), default_value_t = false, num_args = 0..=1, default_missing_value = "true")]
    pub webhook_allow_private: bool,
    /// Webhook delivery attempts in flight at once on this instance.
    #[arg(long, env = "LICENTIA_WEBHOOK_CONCURRENCY", default_value_t = 32)]
    pub webhook_concurrency: usize,
    /// Webhook delivery attempts in flight at once per endpoint (across instances).
    #[arg(long, env = "LICENTIA_WEBHOOK_PER_ENDPOINT", default_value_t = 4)]
    pub webhook_per_endpoint: u32,
    /// Seconds one delivery attempt may take (connect, send, answer).
    #[arg(long, env = "LICENTIA_WEBHOOK_TIMEOUT", default_value_t = 10)]
    pub webhook_timeout: u64,
    /// Seconds before the second attempt of a failed delivery (later ones double it, up to
    /// 2 h, over a day), and the shortest pause of a failing endpoint.
    #[arg(long, env = "LICENTIA_WEBHOOK_FIRST_RETRY", default_value_t = 5)]
    pub webhook_first_retry: u64,
    /// Seconds an endpoint may fail before it is disabled (`webhook.disabled`); default 5 days.
    #[arg(long, env = "LICENTIA_WEBHOOK_DISABLE_AFTER", default_value_t = 5 * 24 * 3600)]
    pub webhook_disable_after: u64,
    /// Seconds finished webhook deliveries (and their attempts) are kept; default 30 days.
    #[arg(long, env = "LICENTIA_WEBHOOK_RETENTION", default_value_t = 30 * 24 * 3600)]
    pub webhook_retention: u64,
    /// Seconds telemetry records are kept; default 90 days.
    #[arg(long, env = "LICENTIA_TELEMETRY_RETENTION", default_value_t = DEFAULT_TELEMETRY_RETENTION_SECS)]
    pub telemetry_retention: u64,
    /// Seconds a pre-registered device's session lasts unless used (a call with less than
    /// half left extends it); default 7 days, at least 60.
    #[arg(long, env = "LICENTIA_SESSION_TTL", default_value_t = DEFAULT_SESSION_TTL_SECS)]
    pub session_ttl: u64,
    /// Where release artifacts' bytes are kept: `file:///absolute/path`, `s3://bucket[/prefix]`
    /// (configured by the standard `AWS_*` variables) or `memory://`;
    /// default `file://` + the system's temporary directory + `/licentia-artifacts`.
    #[arg(long, env = "LICENTIA_ARTIFACTS", default_value = "")]
    pub artifacts: String,
    /// Seconds a download token (`POST /api/v1/license/downloads`) is good for.
    #[arg(long, env = "LICENTIA_DOWNLOAD_TTL", default_value_t = DEFAULT_DOWNLOAD_TTL_SECS)]
    pub download_ttl: u64,
    /// Largest artifact uploaded as a raw `application/octet-stream` body, in bytes.
    #[arg(long, env = "LICENTIA_ARTIFACT_UPLOAD_LIMIT", default_value_t = DEFAULT_ARTIFACT_UPLOAD_LIMIT)]
    pub artifact_upload_limit: usize,
    /// Seconds a raw artifact upload's body may take to arrive.
    #[arg(long, env = "LICENTIA_ARTIFACT_UPLOAD_TIMEOUT", default_value_t = DEFAULT_ARTIFACT_UPLOAD_TIMEOUT_SECS)]
    pub artifact_upload_timeout: u64,
    /// A PEM file of extra root certificates to trust for `https://` webhook endpoints.
    #[arg(long, env = "LICENTIA_WEBHOOK_CA_FILE")]
    pub webhook_ca_file: Option<std::path::PathBuf>,
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
            limits: Limits {
                head_timeout: Duration::from_secs(self.head_timeout),
                body_timeout: Duration::from_secs(self.body_timeout),
                idle_timeout: Duration::from_secs(self.idle_timeout),
                max_connections: self.max_connections,
                shutdown_grace: Duration::from_secs(self.shutdown_grace),
            },
            rate_limits: (self.rate_limit == Switch::On).then(|| RateLimits {
                per_credential_per_second: self.rate_limit_per_credential,
                per_credential_burst: self.rate_limit_per_credential.saturating_mul(2),
                failed_auth_burst: self.rate_limit_failed_auth,
                ..RateLimits::default()
            }),
            trusted_proxies: self.trusted_proxies.clone(),
            webhook_allow_private: self.webhook_allow_private,
            idempotency_ttl_secs: self.idempotency_ttl,
            metrics_separate: self.metrics_listen.is_some(),
            webhooks: WebhookConfig {
                concurrency: self.webhook_concurrency.max(1),
                per_endpoint: self.webhook_per_endpoint.max(1),
                attempt_timeout: Duration::from_secs(self.webhook_timeout.max(1)),
                connect_timeout: Duration::from_secs(self.webhook_timeout.clamp(1, 5)),
                first_retry: Duration::from_secs(self.webhook_first_retry.max(1)),
                disable_after: Duration::from_secs(self.webhook_disable_after),
                retention: Duration::from_secs(self.webhook_retention),
                ca_file: self.webhook_ca_file.clone(),
                ..WebhookConfig::default()
            },
            telemetry_retention_secs: self.telemetry_retention,
            session_ttl_secs: self.session_ttl,
            artifacts: ArtifactConfig {
                url: self.artifacts.clone(),
                download_ttl_secs: self.download_ttl,
                upload_limit: self.artifact_upload_limit,
                upload_timeout: Duration::from_secs(self.artifact_upload_timeout),
                ..ArtifactConfig::default()
            },
        }
    }
}

const fn secs(d: Duration) -> u64 {
    d.as_secs()
}

/// A CIDR, or a bare address as a one-address network.
fn parse_net(s: &str) -> Result<IpNet, String> {
    let s = s.trim();
    s.parse::<IpNet>()
        .or_else(|_| s.parse::<std::net::IpAddr>().map(IpNet::from))
        .map_err(|_| format!("`{s}` is not a CIDR (10.0.0.0/8) or an address"))
}
