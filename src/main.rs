use std::process::ExitCode;

use clap::Parser;
use parlor::configuration::{AdminCommand, Command, Settings};
use parlor::startup::Application;

#[actix_web::main]
async fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let settings = Settings::parse();
    if let Some(Command::Admin(AdminCommand::Create { name })) = &settings.command {
        return match create_admin(&settings, name) {
            Ok(message) => {
                println!("{message}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("parlor admin create: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let app = match Application::build(settings) {
        Ok(app) => app,
        Err(e) => {
            log::error!("cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    log::info!("Parlor is listening on {}", app.url());
    match app.run_until_stopped().await {
        Ok(true) => ExitCode::SUCCESS,
        // The writer is still retrying on a blocking thread, which the
        // runtime would wait for on its way out: leave now, as promised.
        Ok(false) => std::process::exit(1),
        Err(e) => {
            log::error!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// `parlor admin create NAME`: the first admin, before anyone can log in to
/// the console. The password comes from standard input (typed at a prompt
/// that does not show it, or piped), so it never appears in the shell
/// history, the process list or on the screen.
fn create_admin(settings: &Settings, name: &str) -> Result<String, String> {
    let name = parlor::domain::DisplayName::parse(name).map_err(|e| e.to_string())?;
    let typed = parlor::terminal::read_secret(&format!("password for {name}: "))?;
    let password = parlor::accounts::Password::parse(typed).map_err(|e| e.to_string())?;
    // One plain connection, no pool: nothing left running when the command ends.
    let url = &settings.database_url;
    let mut conn = parlor::db::establish(url).map_err(|e| format!("{url}: {e}"))?;
    parlor::db::run_migrations(&mut conn).map_err(|e| e.to_string())?;
    let created = parlor::accounts::create_admin(&mut conn, &name, &password).map_err(|e| e.to_string())?;
    Ok(if created {
        format!("created admin account '{name}'")
    } else {
        format!("'{name}' is now an admin, with the new password")
    })
}
