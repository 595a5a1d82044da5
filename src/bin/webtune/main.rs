//! `webtune`, the native shell over the core: train, predict, encode, bench and serve.
mod serve;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "webtune", version, about = "Fine-tune a pre-trained BERT classifier (frozen / top-k / full) — natively, or serve the in-browser app")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the web app (www/) with COOP/COEP headers and a local Hugging Face hub mirror.
    Serve(serve::ServeArgs),
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve::run(args),
    };
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
