//! The `licentia-server` binary: configuration, backend choice, bootstrap, serve.

use std::process::ExitCode;

use clap::Parser;
use licentia_core::crypto::MasterKey;
use licentia_core::engine::{Actor, EngineError};
use licentia_core::store::Store;
use licentia_server::config::{
    BackendArgs, Cli, Command, KeysCommand, RotateArgs, ServeArgs, TokensCommand, UsersCommand,
    VerifyArgs,
};
use licentia_server::{App, serve_app, shutdown_signal};
use licentia_storage_memory::MemoryStore;
use licentia_storage_postgres::PostgresStore;

/// A request allocates and frees dozens of small buffers (headers, JSON, the signed body),
/// across the runtime's worker threads: mimalloc's per-thread free lists serve them without
/// the system allocator's arena locks and consolidation (measured in `benches/README.md`).
/// The binary's choice only; the library leaves the allocator to its embedder.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use tracing_subscriber::EnvFilter;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Where the data lives, chosen at run time (`DATABASE_URL` set means PostgreSQL).
enum Backend {
    Memory,
    Postgres(String),
}

impl Backend {
    fn of(args: &BackendArgs) -> Self {
        match &args.database_url {
            Some(url) if !url.trim().is_empty() => Self::Postgres(url.clone()),
            _ => Self::Memory,
        }
    }
}

/// Connects to PostgreSQL at `url`, sealing signing keys under the master key when one is
/// configured, and applies the migrations.
/// What a failed connection to PostgreSQL says: where, as whom, the driver's reason and
/// what to check.
fn connect_error(e: licentia_core::store::StoreError) -> BoxError {
    use std::error::Error as _;
    let what = e
        .source()
        .map_or_else(|| e.to_string(), ToString::to_string);
    let hint = match e {
        licentia_core::store::StoreError::Unavailable { .. } => {
            "is the server running and DATABASE_URL's host and port right?"
        }
        _ => "check DATABASE_URL: the database must exist and the role must be allowed in",
    };
    format!("cannot connect to {what}; {hint}").into()
}

/// The master key, when one is configured.
///
/// # Errors
///
/// One that is set but is not the base64 of 32 bytes, on every backend.
fn master_key(args: &BackendArgs) -> Result<Option<MasterKey>, BoxError> {
    match args.master_key.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(key) => MasterKey::from_base64(key).map(Some).map_err(|_| {
            "LICENTIA_MASTER_KEY must be the standard base64 of 32 random bytes \
             (e.g. `openssl rand -base64 32`, saved to a file and kept)"
                .into()
        }),
    }
}

/// Connects to PostgreSQL at `url`, sealing signing seeds and webhook secrets under the
/// master key, and applies the migrations. Without a master key it refuses unless
/// `LICENTIA_ALLOW_PLAINTEXT_KEYS` is set; with one, whatever is still stored in the clear is
/// sealed now.
async fn postgres(
    url: &str,
    args: &BackendArgs,
    read_connections: Option<u32>,
) -> Result<PostgresStore, BoxError> {
    let master = master_key(args)?;
    if master.is_none() && !args.allow_plaintext_keys {
        return Err(
            "LICENTIA_MASTER_KEY is not set: on PostgreSQL the signing keys and webhook \
                    secrets are sealed under it. Set it to the base64 of 32 random bytes \
                    (`openssl rand -base64 32 > master.key`, then \
                    LICENTIA_MASTER_KEY=$(cat master.key)), or set \
                    LICENTIA_ALLOW_PLAINTEXT_KEYS=1 to store them in the clear (development only)"
                .into(),
        );
    }
    let mut store = PostgresStore::connect(url).await.map_err(connect_error)?;
    if let Some(n) = read_connections {
        store = store.with_read_connections(n);
    }
    let sealing = master.is_some();
    if let Some(key) = master {
        store = store.with_master_key(key);
    }
    store
        .migrate()
        .await
        .map_err(|e| format!("migrations failed on {}: {}", store.describe(), chain(&e)))?;
    if sealing {
        let sealed = store
            .seal_clear_secrets()
            .await
            .map_err(|e| format!("cannot seal the secrets stored in the clear: {}", chain(&e)))?;
        if sealed.total() > 0 {
            println!(
                "licentia-server: sealed {} signing seed(s), {} webhook secret(s) and {} TOTP \
                 secret(s) that were stored in the clear",
                sealed.signing_seeds, sealed.webhook_secrets, sealed.totp_secrets
            );
        }
    } else {
        println!(
            "licentia-server: WARNING signing keys, webhook secrets and TOTP secrets are \
             stored in the clear (LICENTIA_ALLOW_PLAINTEXT_KEYS)"
        );
    }
    Ok(store)
}

#[tokio::main]
async fn main() -> ExitCode {
    if let Err(e) = init_logging() {
        eprintln!("licentia-server: error: {e}");
        return ExitCode::FAILURE;
    }
    // The metrics recorder first, so that nothing recorded at start is lost.
    let _ = licentia_server::metrics::handle();
    let cli = Cli::parse();
    let result = match cli.command {
        None => serve(cli.serve).await,
        Some(Command::Serve(args)) => serve(*args).await,
        Some(Command::Keys {
            command: KeysCommand::Rotate(args),
        }) => rotate(args).await,
        Some(Command::Migrate(args)) => migrate(args).await,
        Some(Command::Tokens { command }) => tokens(command).await,
        Some(Command::Users { command }) => users(command).await,
        Some(Command::Verify(args)) => verify(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("licentia-server: error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Logs to standard error: `RUST_LOG` filters (default `info`); `LICENTIA_LOG_FORMAT=json`
/// writes one JSON object per line, `text` (the default) plain lines, coloured only on a
/// terminal and never when `NO_COLOR` is set.
fn init_logging() -> Result<(), BoxError> {
    use std::io::IsTerminal;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let format = std::env::var("LICENTIA_LOG_FORMAT").unwrap_or_default();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format.trim().to_ascii_lowercase().as_str() {
        "json" => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .init(),
        "" | "text" => {
            let colour = std::io::stderr().is_terminal()
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
            builder.with_ansi(colour).init();
        }
        other => {
            return Err(
                format!("LICENTIA_LOG_FORMAT must be `text` or `json`, not `{other}`").into(),
            );
        }
    }
    Ok(())
}

async fn serve(args: ServeArgs) -> Result<(), BoxError> {
    // A malformed key is an error on every backend, not only where it is used.
    master_key(&args.backend)?;
    match Backend::of(&args.backend) {
        Backend::Memory => {
            run(
                MemoryStore::new(),
                "memory (data lives in this process only)",
                &args,
                |_| {},
            )
            .await
        }
        Backend::Postgres(url) => {
            let store = postgres(&url, &args.backend, args.db_read_connections).await?;
            let backend = format!("postgresql ({})", store.describe());
            let gauges = store.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
                loop {
                    tick.tick().await;
                    licentia_server::metrics::db_pools(&gauges.pool_stats());
                    licentia_server::metrics::db_read_path(gauges.read_path_stats());
                }
            });
            // Key rotations by any instance (or `keys rotate`) reach this one.
            run(store, &backend, &args, |app| {
                licentia_server::keys::spawn_key_reload(app.clone());
            })
            .await
        }
    }
}

async fn run<S: Store + 'static>(
    store: S,
    backend: &str,
    args: &ServeArgs,
    follow: impl FnOnce(&App<S>),
) -> Result<(), BoxError> {
    let app = App::start(store, args.config())
        .await
        .map_err(|e| format!("cannot start: {}", chain(&e)))?;
    follow(&app);
    // Bind before anything is printed: a port in use must not cost a fresh admin token.
    let listener = bind(&args.listen).await?;
    let addr = listener.local_addr()?;
    let bootstrap = args.bootstrap_token.as_deref().filter(|t| !t.is_empty());
    match app.engine().bootstrap_admin(bootstrap).await? {
        Some(_) if bootstrap.is_some() => {
            println!("admin token: the value of LICENTIA_BOOTSTRAP_TOKEN");
        }
        Some(created) => {
            println!("admin token (shown once, keep it): {}", created.token);
        }
        None => {}
    }
    println!("licentia-server: backend {backend}");
    println!("licentia-server: listening on http://{addr}  (try: curl http://{addr}/readyz)");
    println!(
        "licentia-server: admin console on http://{addr}/console (sign in with a management token)"
    );
    announce_opt_outs(&app.config().clone());
    if let Some(metrics_addr) = args.metrics_listen {
        let metrics = tokio::net::TcpListener::bind(metrics_addr)
            .await
            .map_err(|e| format!("cannot listen on {metrics_addr} for /metrics: {e}"))?;
        println!(
            "licentia-server: metrics on http://{}/metrics",
            metrics.local_addr()?
        );
        let router = licentia_server::metrics_router(app.clone());
        let limits = app.config().limits;
        tokio::spawn(async move {
            if let Err(e) =
                licentia_server::transport::serve(metrics, router, limits, std::future::pending())
                    .await
            {
                tracing::error!(error = %e, "the metrics listener failed");
            }
        });
    }
    tracing::info!(%addr, body_limit = args.body_limit, "serving");
    serve_app(app, listener, shutdown_signal()).await
}

/// Binds `listen` (`host:port`; the host may be a name), trying each address it resolves to.
async fn bind(listen: &str) -> Result<tokio::net::TcpListener, BoxError> {
    let addrs: Vec<std::net::SocketAddr> = tokio::net::lookup_host(listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: not a host:port to bind ({e})"))?
        .collect();
    let mut last = None;
    for addr in &addrs {
        match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => return Ok(l),
            Err(e) => last = Some((addr, e)),
        }
    }
    Err(match last {
        Some((addr, e)) => format!("cannot listen on {listen} ({addr}): {e}").into(),
        None => format!("cannot listen on {listen}: it resolves to no address").into(),
    })
}

/// An error and its sources, as one line: what went wrong down to the driver's reason. The
/// generic wrappers ("internal error", "storage backend error") are left out when a source
/// says more.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    const GENERIC: [&str; 3] = [
        "internal error",
        "storage backend error",
        "storage unavailable",
    ];
    let mut parts: Vec<String> = Vec::new();
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = next {
        let text = err.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = err.source();
    }
    let specific: Vec<&String> = parts
        .iter()
        .filter(|p| !GENERIC.contains(&p.as_str()))
        .collect();
    if specific.is_empty() {
        parts.join(": ")
    } else {
        specific
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(": ")
    }
}

/// Says at start which of the secure defaults are turned off (DESIGN 7: loud opt-outs).
fn announce_opt_outs(config: &licentia_server::Config) {
    if config.rate_limits.is_none() {
        println!("licentia-server: WARNING rate limits are off (LICENTIA_RATE_LIMIT=off)");
    }
    if config.webhook_allow_private {
        println!(
            "licentia-server: WARNING webhook URLs may target private and loopback addresses \
             (LICENTIA_WEBHOOK_ALLOW_PRIVATE)"
        );
    }
    if !config.trusted_proxies.is_empty() {
        let nets: Vec<String> = config
            .trusted_proxies
            .iter()
            .map(ToString::to_string)
            .collect();
        println!(
            "licentia-server: client addresses from X-Forwarded-For behind {}",
            nets.join(", ")
        );
    }
}

/// The app of a command that works on the database alone (the memory backend's state lives
/// in its running server, so such a command is refused with `on_memory`).
async fn postgres_app(
    backend: &BackendArgs,
    on_memory: &str,
) -> Result<App<PostgresStore>, BoxError> {
    let Backend::Postgres(url) = Backend::of(backend) else {
        return Err(on_memory.into());
    };
    let store = postgres(&url, backend, None).await?;
    App::start(store, Default::default())
        .await
        .map_err(|e| format!("cannot start: {}", chain(&e)).into())
}

async fn rotate(args: RotateArgs) -> Result<(), BoxError> {
    let app = postgres_app(
        &args.backend,
        "keys rotate needs DATABASE_URL (a PostgreSQL URL): the memory backend's keys live \
         inside the running server, and rotating a store of this command alone would change \
         nothing",
    )
    .await?;
    let delay = i64::try_from(args.activate_in)
        .ok()
        .and_then(chrono::TimeDelta::try_seconds)
        .ok_or("--activate-in is too large")?;
    let engine = app.engine();
    let key = match &args.product {
        None => engine.rotate_keys_in(&Actor::system(), delay).await,
        Some(product) => {
            engine
                .rotate_product_keys_in(&Actor::system(), product, delay)
                .await
        }
    };
    let key = key.map_err(|e| match (&e, &args.product) {
        (EngineError::NotFound { .. }, Some(p)) => format!(
            "no product signing with its own keys has the code or id {p} (give it its own \
             keys first: \"signing\": \"product\" on the product)"
        ),
        _ => chain(&e),
    })?;
    let ring = match &key.product_id {
        Some(p) => format!("product {p}'s signing key"),
        None => "signing key".to_owned(),
    };
    match key.activates_at {
        Some(at) => println!(
            "new {ring} {} published; every server lists it within 5 s and signs with it \
             from {} on",
            key.kid,
            at.get().to_rfc3339()
        ),
        None => println!(
            "new active {ring}: {} (created {})",
            key.kid, key.created_at
        ),
    }
    Ok(())
}

async fn migrate(args: BackendArgs) -> Result<(), BoxError> {
    match Backend::of(&args) {
        Backend::Memory => Err("migrate needs DATABASE_URL (a PostgreSQL URL); the memory \
                               backend has nothing to migrate"
            .into()),
        Backend::Postgres(url) => {
            // Migrations write no secret: they need no master key.
            let store = PostgresStore::connect(&url).await.map_err(connect_error)?;
            store
                .migrate()
                .await
                .map_err(|e| format!("migrations failed: {e}"))?;
            println!("licentia-server: {} is migrated", store.describe());
            Ok(())
        }
    }
}

async fn users(command: UsersCommand) -> Result<(), BoxError> {
    let backend = match &command {
        UsersCommand::Invite { backend, .. } | UsersCommand::ResetPassword { backend, .. } => {
            backend.clone()
        }
    };
    let app = postgres_app(
        &backend,
        "users needs DATABASE_URL (a PostgreSQL URL): on the memory backend invite users \
         through the running server (POST /api/v1/users with its admin token)",
    )
    .await?;
    let engine = app.engine();
    let actor = Actor::system();
    let issued = match command {
        UsersCommand::Invite { email, role, .. } => {
            let role = role
                .parse()
                .map_err(|_| format!("`{role}` is not a role (owner, admin, support, billing)"))?;
            engine
                .invite_user(&actor, licentia_core::engine::UserInvite { email, role })
                .await
        }
        UsersCommand::ResetPassword { email, .. } => {
            engine.issue_password_reset(&actor, &email).await
        }
    };
    let issued = issued.map_err(|e| match e {
        EngineError::NotFound { .. } => "no user has that e-mail".to_owned(),
        e => chain(&e),
    })?;
    println!(
        "user: {} ({}, {})",
        issued.user.email, issued.user.id, issued.user.role
    );
    println!(
        "one-time token (shown once, good until {}): {}",
        issued.expires_at.to_rfc3339(),
        issued.token
    );
    println!("set the password with POST /api/v1/auth/password {{\"token\": …, \"password\": …}}");
    Ok(())
}

async fn tokens(command: TokensCommand) -> Result<(), BoxError> {
    let backend = match &command {
        TokensCommand::Create { backend, .. }
        | TokensCommand::List { backend }
        | TokensCommand::Revoke { backend, .. } => backend.clone(),
    };
    let app = postgres_app(
        &backend,
        "tokens needs DATABASE_URL (a PostgreSQL URL): the memory backend keeps its tokens \
         inside the running server, which prints its first admin token at start",
    )
    .await?;
    let engine = app.engine();
    let actor = Actor::system();
    match command {
        TokensCommand::Create { scopes, name, .. } => {
            let scopes = scopes
                .iter()
                .map(|s| {
                    s.parse()
                        .map_err(|_| format!("`{s}` is not a scope (admin, license:read, …)"))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let created = engine
                .create_api_key(
                    &actor,
                    licentia_core::engine::requests::ApiKeyCreate {
                        name,
                        scopes: Some(scopes),
                        allowed_cidrs: None,
                        expires_at: None,
                    },
                )
                .await?;
            println!("id: {}", created.api_key.id);
            println!("token (shown once, keep it): {}", created.token);
        }
        TokensCommand::List { .. } => {
            let keys = engine
                .list_api_keys(licentia_core::store::Limit::new(Some(200)))
                .await?;
            for k in keys {
                let scopes: Vec<String> = k.scopes.iter().map(ToString::to_string).collect();
                println!(
                    "{}  {}  {}…  [{}]  {}",
                    k.id,
                    if k.is_active { "active " } else { "revoked" },
                    k.key_prefix,
                    scopes.join(","),
                    k.name
                );
            }
        }
        TokensCommand::Revoke { id, .. } => {
            engine.revoke_api_key(&actor, &id).await?;
            println!("revoked {id}");
        }
    }
    Ok(())
}

/// Checks a signed answer's Ed25519 signature with the key its `kid` names, exactly as a client
/// does (DESIGN 4.1, `docs/wire-formats.md`), and prints what was verified.
fn verify(args: &VerifyArgs) -> Result<(), BoxError> {
    use licentia_core::crypto::{PublicKeyInfo, Unverified};
    let read = |path: &std::path::Path| {
        std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
    };
    let keys: serde_json::Value = serde_json::from_slice(&read(&args.keys)?)
        .map_err(|e| format!("{} is not JSON: {e}", args.keys.display()))?;
    let list = keys.get("data").cloned().unwrap_or(keys);
    let infos: Vec<PublicKeyInfo> = serde_json::from_value(list)
        .map_err(|e| format!("{} is not a public key set ({e})", args.keys.display()))?;
    let set = licentia_core::crypto::key_set(infos)
        .map_err(|e| format!("{}: unusable key ({e})", args.keys.display()))?;
    let answer = match args.answer.as_deref() {
        None => read_stdin()?,
        Some(p) if p.as_os_str() == "-" => read_stdin()?,
        Some(p) => read(p)?,
    };
    let unverified = Unverified::<serde_json::Value>::from_envelope_json(&answer)
        .map_err(|e| format!("not a signed answer ({{data, signature}}): {e}"))?;
    let kid = unverified.kid().to_owned();
    let verified = unverified
        .verify(&set)
        .map_err(|e| format!("the signature does NOT verify (kid {kid}): {e}"))?;
    println!(
        "verified: Ed25519 signature by key {} ({:?}) over {} bytes of data",
        verified.kid(),
        verified.key_status(),
        verified.signed_bytes().len()
    );
    println!("{}", String::from_utf8_lossy(verified.signed_bytes()));
    Ok(())
}

fn read_stdin() -> Result<Vec<u8>, BoxError> {
    use std::io::Read;
    let mut buf = Vec::new();
    std::io::stdin()
        .read_to_end(&mut buf)
        .map_err(|e| format!("cannot read standard input: {e}"))?;
    Ok(buf)
}
