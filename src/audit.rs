//! `sidekick audit` and `sidekick replay`.

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use sidekick_domain::{DataKey, SealedText, UserId};
use sidekick_projector::Projection;
use sidekick_store::{events, registry, Store};

use crate::config::Config;
use crate::serve::connect_db;
use crate::UsageError;

async fn resolve_user(pool: &sqlx::PgPool, user: &str) -> Result<UserId> {
    if user.starts_with('+') {
        let phone = crate::users::parse_phone(user)?;
        return registry::user_by_phone(pool, &phone).await?.ok_or_else(|| {
            UsageError(format!("no user has the number {}", phone.masked())).into()
        });
    }
    UserId::parse(user).map_err(|e| UsageError(e.to_string()).into())
}

/// Replaces every sealed value in `v` by its plaintext (or a marker).
fn unseal(v: &mut serde_json::Value, key: Option<&DataKey>) {
    match v {
        serde_json::Value::String(s) => {
            if let Ok(sealed) = SealedText::from_stored(s.clone()) {
                *s = match key.map(|k| k.open(&sealed)) {
                    Some(Ok(plain)) => plain,
                    Some(Err(_)) => "[sealed: key destroyed or not this user's]".into(),
                    None => "[sealed]".into(),
                };
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(|i| unseal(i, key)),
        serde_json::Value::Object(map) => map.values_mut().for_each(|i| unseal(i, key)),
        _ => {}
    }
}

pub async fn audit(
    config: &Config,
    user: &str,
    since: Option<&str>,
    json: bool,
    reveal: bool,
) -> Result<()> {
    let since = since
        .map(|s| chrono::DateTime::parse_from_rfc3339(s).map(|t| t.with_timezone(&chrono::Utc)))
        .transpose()
        .map_err(|e| {
            UsageError(format!(
                "--since must be RFC 3339 (e.g. 2026-11-24T18:00:00Z): {e}"
            ))
        })?;
    let pool = connect_db(config).await?;
    let user = resolve_user(&pool, user).await?;
    let key = if reveal {
        let store = Store::new(pool.clone(), config.master_key()?);
        Some(
            store
                .data_key(user)
                .await
                .context("cannot open this user's data (key destroyed?)")?,
        )
    } else {
        None
    };
    let history = events::for_user(&pool, user, since).await?;
    if history.is_empty() {
        eprintln!("no events for {user}");
    }
    for mut e in history {
        unseal(&mut e.payload, key.as_ref());
        if json {
            println!("{}", serde_json::to_string(&e)?);
        } else {
            let body = e
                .payload
                .as_object()
                .and_then(|m| m.values().next())
                .cloned()
                .unwrap_or_default();
            println!(
                "{}  {:<12} #{:<5} {:<24} {}",
                e.occurred_at.format("%Y-%m-%d %H:%M:%S%.3f"),
                e.aggregate_type,
                e.sequence,
                e.event_type,
                body
            );
        }
    }
    Ok(())
}

pub async fn replay(config: &Config, projection: &str, user: Option<&str>) -> Result<()> {
    let names = sidekick_projector::names();
    if projection != "all" && !names.contains(&projection) {
        return Err(UsageError(format!(
            "unknown projection {projection:?}; choose one of {names:?} or all"
        ))
        .into());
    }
    let pool = connect_db(config).await?;
    // The memory projection opens sealed content with the users' keys.
    let store = Store::new(pool.clone(), config.master_key()?);
    let selected: Vec<Box<dyn Projection>> = sidekick_projector::all_with(&store)
        .into_iter()
        .filter(|p| projection == "all" || p.name() == projection)
        .collect();
    let user = match user {
        Some(u) => Some(resolve_user(&pool, u).await?),
        None => None,
    };
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} replaying [{bar:40}] {pos}/{len} events ({per_sec}, eta {eta})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    let refs: Vec<&dyn Projection> = selected.iter().map(|p| p.as_ref()).collect();
    let started = std::time::Instant::now();
    let done = sidekick_projector::replay::rebuild(&pool, &refs, user, |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    })
    .await?;
    bar.finish_and_clear();
    let names: Vec<&str> = refs.iter().map(|p| p.name()).collect();
    println!(
        "replayed {done} events into {} in {:.1?}",
        names.join(", "),
        started.elapsed()
    );
    Ok(())
}
