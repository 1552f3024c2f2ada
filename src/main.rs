//! The `lookout` command: parse arguments, load the configuration, run the gateway.

use clap::Parser;
use lookout::config::{Config, ConfigError};
use lookout::http::TlsCertificate;
use lookout::paths::PathManager;
use std::path::PathBuf;
use std::sync::Arc;
use std::process::ExitCode;

/// Exit code for a configuration the user must fix (as for a usage error).
const EXIT_BAD_CONFIG: u8 = 2;

#[derive(Parser)]
#[command(name = "lookout", version, about = "Camera streaming gateway: RTSP cameras to WebRTC viewers")]
struct Args {
    /// TOML configuration file (see lookout.example.toml). Without it, Lookout serves the
    /// built-in test pattern at path `demo`.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// HTTP address for the page, signalling, WHEP and API [default: 127.0.0.1:8080].
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// UDP port shared by every viewer's media (and TCP port for ICE-TCP) [default: 8189];
    /// 0 lets the system choose. Replaces `webrtc.udp_port`/`udp_ports` from the file.
    #[arg(long, value_name = "PORT")]
    udp_port: Option<u16>,
    /// Adds a camera path, for example `--source front=rtsp://user:pass@10.0.0.5/stream1`.
    /// Repeatable.
    #[arg(long = "source", value_name = "NAME=URL")]
    sources: Vec<String>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Reads a password (one line on standard input) and prints the argon2 hash that
    /// `[[auth.users]] password` takes.
    HashPassword,
}

/// `lookout hash-password`: the password is read from standard input, so that it stays out of
/// the shell's history and the process list.
fn hash_password() -> ExitCode {
    if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        eprint!("password (shown as typed): ");
    }
    let mut line = String::new();
    if let Err(error) = std::io::stdin().read_line(&mut line) {
        eprintln!("lookout: cannot read the password: {error}");
        return ExitCode::FAILURE;
    }
    let password = line.trim_end_matches(['\r', '\n']);
    if password.is_empty() {
        eprintln!("lookout: the password is empty");
        return ExitCode::from(EXIT_BAD_CONFIG);
    }
    match lookout::auth::hash_password(password) {
        Ok(hash) => {
            println!("{hash}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("lookout: cannot hash the password: {error}");
            ExitCode::FAILURE
        }
    }
}

fn load(args: &Args) -> Result<Config, ConfigError> {
    let mut config = match &args.config {
        Some(path) => Config::from_file(path)?,
        None => Config::builtin_default(),
    };
    if let Some(listen) = &args.listen {
        config.set_listen(listen)?;
    }
    if let Some(port) = args.udp_port {
        config.webrtc.media_ports = lookout::config::MediaPorts::Shared(port);
    }
    for source in &args.sources {
        config.add_source_argument(source)?;
    }
    Ok(config)
}

/// On every SIGHUP: reads the TLS certificate again (renewal without a restart), and the
/// configuration file, whose path changes apply at once; other settings wait for a restart.
async fn reload_on_sighup(mut hangups: tokio::signal::unix::Signal, args: &Args, started_with: Config, paths: Arc<PathManager>, tls: Option<Arc<TlsCertificate>>) {
    while hangups.recv().await.is_some() {
        match tls.as_ref().map(|tls| tls.reload()) {
            Some(Ok(())) => tracing::info!("SIGHUP: the TLS certificate was read again"),
            Some(Err(error)) => tracing::error!("SIGHUP: {error}; the certificate in use stays"),
            None => {}
        }
        let config = match load(args) {
            Ok(config) => config,
            Err(error) => {
                tracing::error!("SIGHUP: the configuration was not applied, as it is invalid: {error}");
                continue;
            }
        };
        if (Config { paths: started_with.paths.clone(), ..config.clone() }) != started_with {
            tracing::warn!("SIGHUP: settings other than the paths and the TLS certificate changed; they apply at the next start");
        }
        match paths.apply_file(config.paths).await {
            Ok(changes) if changes.is_empty() => tracing::info!("SIGHUP: the configuration file's paths did not change"),
            Ok(changes) => tracing::info!("SIGHUP: {}", changes.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")),
            Err(error) => tracing::error!("SIGHUP: the paths were not changed: {error}"),
        }
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(Command::HashPassword) = args.command {
        return hash_password();
    }
    // Logs on stderr; stdout carries only the line with the page's URL.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,webrtc=warn,rtc=warn,rtc_dtls=error".into()),
        )
        .init();
    let config = match load(&args) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("lookout: invalid configuration: {error}");
            return ExitCode::from(EXIT_BAD_CONFIG);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("lookout: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(async {
        // Listened for before starting, so that a SIGHUP meanwhile does not end the process.
        use tokio::signal::unix::{signal, SignalKind};
        let (hangups, mut terminations) = match (signal(SignalKind::hangup()), signal(SignalKind::terminate())) {
            (Ok(hangups), Ok(terminations)) => (hangups, terminations),
            (Err(error), _) | (_, Err(error)) => {
                eprintln!("lookout: cannot listen for signals: {error}");
                return ExitCode::FAILURE;
            }
        };
        let mut server = match lookout::Server::start(config.clone()).await {
            Ok(server) => server,
            Err(error) => {
                eprintln!("lookout: {error:#}");
                return ExitCode::FAILURE;
            }
        };
        let url = server.page_url();
        let first_path = server.registry.list().first().map(|s| s.name().to_owned());
        match first_path {
            Some(path) => println!("Lookout is running: open {url}?path={path}"),
            None => println!("Lookout is running: open {url} (no paths configured)"),
        }
        let reload = reload_on_sighup(hangups, &args, config, server.paths.clone(), server.tls_certificate());
        let why = tokio::select! {
            _ = reload => return ExitCode::FAILURE,
            _ = server.wait() => return ExitCode::FAILURE,
            _ = tokio::signal::ctrl_c() => "interrupted",
            _ = terminations.recv() => "SIGTERM",
        };
        tracing::info!("{why}: stopping within {} s", lookout::STOP_GRACE.as_secs());
        server.stop().await;
        ExitCode::SUCCESS
    });
    // Work still running off the async threads (a snapshot's decoding, a store's flush) gets a
    // moment, not a wait without end.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    code
}
