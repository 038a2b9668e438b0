//! The command line's contract: exit codes 0/1/2, errors in a line or two that say
//! what to do, and set-up that is safe when several processes run it at once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Output;

use uuid::Uuid;

async fn sidekick(args: &[&str], env: &[(&str, String)]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_sidekick"))
        .args(args)
        .envs(env.iter().map(|(k, v)| (k.to_string(), v.clone())))
        .env(
            "SIDEKICK_DATA_DIR",
            std::env::temp_dir().join(format!("sidekick-cli-{}", Uuid::new_v4().simple())),
        )
        .output()
        .await
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

#[tokio::test]
async fn concurrent_migrations_of_a_fresh_deployment_all_succeed() {
    let id = Uuid::new_v4().simple().to_string();
    let db_url = format!("{}/sk_cli_{id}", sidekick_store::testing::server_url());
    let ns = format!("cli{}", &id[..12]);
    let env = [
        ("DATABASE_URL", db_url.clone()),
        ("SIDEKICK_NAMESPACE", ns.clone()),
        ("SIDEKICK_PARTITIONS", "2".into()),
    ];
    let runs = futures::future::join_all((0..3).map(|_| sidekick(&["migrate"], &env))).await;
    for run in &runs {
        assert!(run.status.success(), "migrate failed: {}", stderr(run));
    }
    // And once more, on an up-to-date deployment.
    assert!(sidekick(&["migrate"], &env).await.status.success());
    let bus = sidekick_bus::Bus::connect(
        "nats://127.0.0.1:4222",
        sidekick_bus::Namespace::parse(&ns).unwrap(),
        2,
    )
    .await
    .unwrap();
    sidekick_bus::topology::delete(&bus).await.unwrap();
    sidekick_store::db::drop_database(&db_url).await.unwrap();
}

#[tokio::test]
async fn bad_usage_exits_2_with_a_hint() {
    let out = sidekick(&["users", "add", "--phone", "555-1234"], &[]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("E.164"), "{}", stderr(&out));
    let out = sidekick(&["serve", "--role", "juggler"], &[]).await;
    assert_eq!(out.status.code(), Some(2));
    let out = sidekick(
        &["audit", "--user", "+15551230001", "--since", "yesterday"],
        &[],
    )
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("RFC 3339"));
    let out = sidekick(&["serve"], &[("SIDEKICK_SIGNUP", "maybe".into())]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("SIDEKICK_SIGNUP"));
}

#[tokio::test]
async fn an_unreachable_database_exits_1_and_says_what_to_check() {
    let env = [(
        "DATABASE_URL",
        "postgres://postgres@127.0.0.1:1/nowhere".to_string(),
    )];
    let out = sidekick(&["users", "list"], &env).await;
    assert_eq!(out.status.code(), Some(1));
    let text = stderr(&out);
    assert!(
        text.contains("cannot reach PostgreSQL") && text.lines().count() <= 4,
        "{text}"
    );
    assert!(!text.contains("panicked"));
}
