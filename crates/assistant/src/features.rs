//! Which features of connected services a user has: the gate in front of every
//! tool that needs an outside account.
//!
//! A feature is enabled when its service is connected (not "needs reconnect"),
//! the grant covers the feature's scopes, and the user has not switched it off.
//! The tool registry offers the assistant (offline engine and models) only
//! tools whose feature is in [`enabled_features`]; a tool for a service that is
//! not connected is never offered, so it is never run.

use std::collections::BTreeMap;

use sidekick_domain::UserId;
use sidekick_integrations::oauth::{Feature, Provider};
use sidekick_store::vault::{self, Connection, ConnectionStatus};
use sidekick_store::{Store, StoreError};

/// The user's enabled features, in [`Feature::ALL`] order.
pub async fn enabled_features(store: &Store, user: UserId) -> Result<Vec<Feature>, StoreError> {
    let connections = vault::connections(store, user).await?;
    let switches = vault::feature_switches(store.pool(), user).await?;
    Ok(features_from(&connections, &switches))
}

/// [`enabled_features`] over rows already read.
pub fn features_from(
    connections: &[Connection],
    switches: &BTreeMap<String, bool>,
) -> Vec<Feature> {
    Feature::ALL
        .into_iter()
        .filter(|feature| {
            let provider: Provider = feature.provider();
            let granted = connections.iter().any(|c| {
                c.service == provider.as_str()
                    && c.status == ConnectionStatus::Connected
                    && feature.granted_by(&c.scopes)
            });
            granted && switches.get(feature.name()).copied().unwrap_or(true)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connection(service: &str, status: ConnectionStatus, scopes: &[&str]) -> Connection {
        Connection {
            service: service.into(),
            status,
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            account_label: None,
        }
    }

    #[test]
    fn only_connected_services_with_enough_scope_unlock_features() {
        let connections = [
            connection(
                "microsoft",
                ConnectionStatus::Connected,
                &["offline_access", "User.Read", "Calendars.ReadWrite"],
            ),
            connection("notion", ConnectionStatus::NeedsReconnect, &[]),
        ];
        assert_eq!(
            features_from(&connections, &BTreeMap::new()),
            vec![Feature::Calendar],
            "mail lacks its scope, notion is broken, google is not connected"
        );
        assert!(features_from(&[], &BTreeMap::new()).is_empty());
    }

    #[test]
    fn a_switched_off_feature_stays_off() {
        let connections = [connection(
            "microsoft",
            ConnectionStatus::Connected,
            &["Calendars.ReadWrite", "Mail.ReadWrite"],
        )];
        let switches =
            BTreeMap::from([("mail".to_string(), false), ("calendar".to_string(), true)]);
        assert_eq!(
            features_from(&connections, &switches),
            vec![Feature::Calendar]
        );
    }
}
