//! `sed-train`: train the players and the principal of Social Environment Design.
//!
//! Training is the default action (`sed-train --envs 4096`); subcommands benchmark the
//! trainer and the engines, evaluate a run, list the devices, and step or render the game.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
