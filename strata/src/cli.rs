//! The `strata` command line (clap): `serve`, `validate`, `bench`, `jobs` and
//! `backends`, with their arguments and config loading.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use strata_backend::{Backend, S3Backend};
use strata_core::config::{BackendConfig, Config, ConfigError, Role};

#[derive(Parser)]
#[command(name = "strata", version, about = "One S3 endpoint in front of many backends")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run Strata. With no config: S3 on 127.0.0.1:9000, data under ./strata-data.
    Serve(ServeArgs),
    /// Check a config file and print a summary, or every error and how to fix it.
    Validate(ValidateArgs),
    /// Print the version.
    Version,
    /// Load-generate against any S3 endpoint (`run`), or compare two endpoints (`compare`).
    Bench(strata_bench::BenchArgs),
    /// Start, pause, cancel or list the resumable jobs (encrypt-existing, decrypt-existing).
    Jobs(crate::jobs_cli::JobsArgs),
    /// List backends and drain, undrain, remove or purge one (persisted state; see docs/drain.md).
    Backends(crate::backends_cli::BackendsArgs),
}

#[derive(Args)]
pub struct ServeArgs {
    /// YAML config file.
    #[arg(long, env = "STRATA_CONFIG")]
    pub config: Option<PathBuf>,
    /// Which roles this process runs.
    #[arg(long, default_value = "all", value_parser = ["all", "dataplane", "controlplane", "worker"])]
    pub role: String,
    /// Overrides server.listen (the S3 address).
    #[arg(long)]
    pub listen: Option<std::net::SocketAddr>,
    /// Overrides control_plane.url (for --role dataplane or worker).
    #[arg(long)]
    pub control_plane: Option<String>,
}

#[derive(Args)]
pub struct ValidateArgs {
    #[arg(long)]
    pub config: PathBuf,
    /// Validate for this role.
    #[arg(long, default_value = "all", value_parser = ["all", "dataplane", "controlplane", "worker"])]
    pub role: String,
    /// Skip reaching the S3 backends (bucket and credential checks).
    #[arg(long)]
    pub offline: bool,
}

/// Reaches every S3 backend: a missing bucket or bad credentials are
/// configuration errors too, reported against the backend's field.
fn probe_backends(config: &Config) -> Vec<ConfigError> {
    let targets: Vec<(usize, &BackendConfig)> = config
        .backends
        .iter()
        .enumerate()
        .filter(|(_, b)| matches!(b, BackendConfig::S3 { .. }))
        .collect();
    if targets.is_empty() {
        return Vec::new();
    }
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            return vec![ConfigError::new(
                "backends",
                format!("cannot start the runtime to check them: {e}"),
            )];
        }
    };
    rt.block_on(async {
        let mut errs = Vec::new();
        for (i, b) in targets {
            let field = format!("backends[{i}]");
            let result = match S3Backend::from_config(b, &field).await {
                Ok(backend) => backend.check().await.map_err(|e| e.to_string()),
                Err(e) => Err(e),
            };
            if let Err(e) = result {
                errs.push(ConfigError::new(field, e));
            }
        }
        errs
    })
}

fn read(path: &PathBuf) -> Result<Config, Vec<ConfigError>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        vec![ConfigError::new(
            path.display().to_string(),
            format!("cannot read the config file: {e}"),
        )]
    })?;
    Config::from_yaml(&text)
}

fn print_errors(errs: &[ConfigError]) {
    eprintln!("The configuration has {} error(s):", errs.len());
    for e in errs {
        eprintln!("  - {e}");
    }
}

/// Reads and validates a config file (embedded defaults without one), for
/// the commands that open the metadata store.
pub fn load_config(path: Option<&std::path::Path>) -> Result<Config, ExitCode> {
    let config = match path {
        Some(p) => read(&p.to_path_buf()).map_err(|e| {
            print_errors(&e);
            ExitCode::FAILURE
        })?,
        None => Config::default(),
    };
    config.validate(Role::All).map_err(|e| {
        print_errors(&e);
        ExitCode::FAILURE
    })?;
    Ok(config)
}

pub fn load_for_serve(args: &ServeArgs) -> Result<(Config, Role), ExitCode> {
    let role = Role::parse(&args.role).expect("clap restricts roles");
    let mut config = match &args.config {
        Some(p) => read(p).map_err(|e| {
            print_errors(&e);
            ExitCode::FAILURE
        })?,
        None => Config::default(),
    };
    if let Some(l) = args.listen {
        config.server.listen = l;
    }
    if let Some(u) = &args.control_plane {
        config.control_plane.url = Some(u.clone());
    }
    config.validate(role).map_err(|e| {
        print_errors(&e);
        ExitCode::FAILURE
    })?;
    Ok((config, role))
}

pub fn validate(args: &ValidateArgs) -> ExitCode {
    let role = Role::parse(&args.role).expect("clap restricts roles");
    let result = std::fs::read_to_string(&args.config)
        .map_err(|e| {
            vec![ConfigError::new(
                args.config.display().to_string(),
                format!("cannot read the config file: {e}"),
            )]
        })
        .and_then(|text| match Config::parse_all(&text) {
            (Some(c), mut errs) => {
                errs.extend(c.validate(role).err().unwrap_or_default());
                if !args.offline {
                    errs.extend(probe_backends(&c));
                }
                if errs.is_empty() { Ok(c) } else { Err(errs) }
            }
            (None, errs) => Err(errs),
        });
    match result {
        Err(errs) => {
            print_errors(&errs);
            ExitCode::FAILURE
        }
        Ok(c) => {
            println!("{}: valid for --role {role}", args.config.display());
            println!("  S3 endpoint:    {} (region {})", c.server.listen, c.server.region);
            if let Some(d) = &c.server.domain {
                println!("  virtual hosts:  *.{d}");
            }
            match (&c.control_plane.listen, &c.control_plane.url) {
                (Some(l), _) => println!("  control plane:  gRPC on {l}"),
                (None, Some(u)) => println!("  control plane:  {u}"),
                (None, None) => println!("  control plane:  in-process"),
            }
            println!("  metadata:       {}", c.database_target());
            for b in c.effective_backends() {
                let place = match &b {
                    BackendConfig::Local { path, .. } => format!("local disk {}", path.display()),
                    BackendConfig::S3 { endpoint, bucket, .. } => format!("s3 {endpoint} bucket {bucket}"),
                };
                let quota = b
                    .limits()
                    .quota_bytes
                    .map_or("no quota".into(), |q| format!("quota {q} bytes"));
                println!("  backend:        {} ({place}, {quota})", b.id());
            }
            let creds = c.credentials.len();
            if creds == 0 {
                println!("  credentials:    none configured; a development key is created on first start");
            } else {
                println!("  credentials:    {creds} configured");
            }
            ExitCode::SUCCESS
        }
    }
}
