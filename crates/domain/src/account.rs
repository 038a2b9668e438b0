//! The Account aggregate: who a user is, how to reach them, and whether they may be texted.
//!
//! One Account per user, keyed by the user id. Its state is a handful of fields, so
//! loading it costs the same however long the user has been around.

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::ids::{PhoneNumber, QuietHours, Timezone, UserId};
use crate::sealed::SealedText;

/// How an account came to exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SignupChannel {
    /// The person texted START/JOIN to the shared number.
    Sms,
    /// An operator added the number (`sidekick users add`).
    Operator,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub enum AccountCommand {
    RegisterAccount {
        user_id: UserId,
        phone: PhoneNumber,
        name: Option<SealedText>,
        timezone: Option<Timezone>,
        via: SignupChannel,
        at: DateTime<Utc>,
    },
    SetName {
        name: SealedText,
    },
    SetTimezone {
        timezone: Timezone,
    },
    SetQuietHours {
        quiet_hours: QuietHours,
    },
    /// Carrier rules: after an opt-out, nothing but the one confirmation goes out.
    OptOut {
        keyword: String,
        at: DateTime<Utc>,
    },
    OptIn {
        at: DateTime<Utc>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub enum AccountEvent {
    AccountRegistered {
        user_id: UserId,
        phone: PhoneNumber,
        timezone: Timezone,
        quiet_hours: QuietHours,
        via: SignupChannel,
        registered_at: DateTime<Utc>,
    },
    NameSet {
        name: SealedText,
    },
    TimezoneSet {
        timezone: Timezone,
    },
    QuietHoursSet {
        quiet_hours: QuietHours,
    },
    OptedOut {
        keyword: String,
        at: DateTime<Utc>,
    },
    OptedIn {
        at: DateTime<Utc>,
    },
}

impl DomainEvent for AccountEvent {
    fn event_type(&self) -> String {
        match self {
            Self::AccountRegistered { .. } => "AccountRegistered",
            Self::NameSet { .. } => "NameSet",
            Self::TimezoneSet { .. } => "TimezoneSet",
            Self::QuietHoursSet { .. } => "QuietHoursSet",
            Self::OptedOut { .. } => "OptedOut",
            Self::OptedIn { .. } => "OptedIn",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountError {
    /// The command needs a registered account; the caller should register first.
    #[error("no account is registered for this user")]
    NotRegistered,
    /// A different phone number is already registered under this user id. A bug in the caller.
    #[error("this user id already belongs to another phone number")]
    PhoneMismatch,
}

/// Where a new user is in the first conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Onboarding {
    NeedsName,
    NeedsTimezone,
    Complete,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Account {
    pub user_id: Option<UserId>,
    pub phone: Option<PhoneNumber>,
    /// Sealed: the aggregate never sees the plaintext name.
    pub name: Option<SealedText>,
    pub timezone: Timezone,
    pub timezone_confirmed: bool,
    pub quiet_hours: QuietHours,
    pub opted_out: bool,
}

impl Account {
    pub fn is_registered(&self) -> bool {
        self.user_id.is_some()
    }

    pub fn onboarding(&self) -> Onboarding {
        if self.name.is_none() {
            Onboarding::NeedsName
        } else if !self.timezone_confirmed {
            Onboarding::NeedsTimezone
        } else {
            Onboarding::Complete
        }
    }
}

impl Aggregate for Account {
    const TYPE: &'static str = "account";
    type Command = AccountCommand;
    type Event = AccountEvent;
    type Error = AccountError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        use AccountCommand as C;
        use AccountEvent as E;
        if let C::RegisterAccount {
            user_id,
            phone,
            name,
            timezone,
            via,
            at,
        } = command
        {
            // Registration is idempotent: a retried sign-up changes nothing.
            if let Some(existing) = &self.phone {
                return if existing == &phone {
                    Ok(())
                } else {
                    Err(AccountError::PhoneMismatch)
                };
            }
            sink.write(
                E::AccountRegistered {
                    user_id,
                    phone,
                    timezone: timezone.unwrap_or_default(),
                    quiet_hours: QuietHours::default(),
                    via,
                    registered_at: at,
                },
                self,
            )
            .await;
            if let Some(name) = name {
                sink.write(E::NameSet { name }, self).await;
            }
            if let Some(timezone) = timezone {
                sink.write(E::TimezoneSet { timezone }, self).await;
            }
            return Ok(());
        }
        if !self.is_registered() {
            return Err(AccountError::NotRegistered);
        }
        match command {
            C::RegisterAccount { .. } => {}
            C::SetName { name } => sink.write(E::NameSet { name }, self).await,
            C::SetTimezone { timezone } => {
                if !(self.timezone_confirmed && self.timezone == timezone) {
                    sink.write(E::TimezoneSet { timezone }, self).await;
                }
            }
            C::SetQuietHours { quiet_hours } => {
                if self.quiet_hours != quiet_hours {
                    sink.write(E::QuietHoursSet { quiet_hours }, self).await;
                }
            }
            C::OptOut { keyword, at } => {
                if !self.opted_out {
                    sink.write(E::OptedOut { keyword, at }, self).await;
                }
            }
            C::OptIn { at } => {
                if self.opted_out {
                    sink.write(E::OptedIn { at }, self).await;
                }
            }
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        use AccountEvent as E;
        match event {
            E::AccountRegistered {
                user_id,
                phone,
                timezone,
                quiet_hours,
                ..
            } => {
                self.user_id = Some(user_id);
                self.phone = Some(phone);
                self.timezone = timezone;
                self.quiet_hours = quiet_hours;
            }
            E::NameSet { name } => self.name = Some(name),
            E::TimezoneSet { timezone } => {
                self.timezone = timezone;
                self.timezone_confirmed = true;
            }
            E::QuietHoursSet { quiet_hours } => self.quiet_hours = quiet_hours,
            E::OptedOut { .. } => self.opted_out = true,
            E::OptedIn { .. } => self.opted_out = false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sealed::DataKey;
    use cqrs_es::test::TestFramework;

    type AccountTest = TestFramework<Account>;

    fn registered(user: UserId) -> AccountEvent {
        AccountEvent::AccountRegistered {
            user_id: user,
            phone: PhoneNumber::parse("+15551230001").unwrap(),
            timezone: Timezone::default(),
            quiet_hours: QuietHours::default(),
            via: SignupChannel::Sms,
            registered_at: DateTime::UNIX_EPOCH,
        }
    }

    #[tokio::test]
    async fn registering_by_sms_starts_onboarding_with_default_quiet_hours() {
        let user = UserId::new();
        AccountTest::with(())
            .given_no_previous_events()
            .when_async(AccountCommand::RegisterAccount {
                user_id: user,
                phone: PhoneNumber::parse("+15551230001").unwrap(),
                name: None,
                timezone: None,
                via: SignupChannel::Sms,
                at: DateTime::UNIX_EPOCH,
            })
            .await
            .then_expect_events(vec![registered(user)]);
        let mut account = Account::default();
        account.apply(registered(user));
        assert_eq!(account.onboarding(), Onboarding::NeedsName);
        assert_eq!(account.quiet_hours, QuietHours::default());
    }

    #[tokio::test]
    async fn registering_twice_with_the_same_phone_changes_nothing() {
        let user = UserId::new();
        AccountTest::with(())
            .given(vec![registered(user)])
            .when_async(AccountCommand::RegisterAccount {
                user_id: user,
                phone: PhoneNumber::parse("+15551230001").unwrap(),
                name: None,
                timezone: None,
                via: SignupChannel::Operator,
                at: DateTime::UNIX_EPOCH,
            })
            .await
            .then_expect_events(vec![]);
    }

    #[tokio::test]
    async fn opting_out_is_recorded_once_and_opting_in_undoes_it() {
        let user = UserId::new();
        let out = AccountEvent::OptedOut {
            keyword: "STOP".into(),
            at: DateTime::UNIX_EPOCH,
        };
        AccountTest::with(())
            .given(vec![registered(user)])
            .when_async(AccountCommand::OptOut {
                keyword: "STOP".into(),
                at: DateTime::UNIX_EPOCH,
            })
            .await
            .then_expect_events(vec![out.clone()]);
        AccountTest::with(())
            .given(vec![registered(user), out.clone()])
            .when_async(AccountCommand::OptOut {
                keyword: "QUIT".into(),
                at: DateTime::UNIX_EPOCH,
            })
            .await
            .then_expect_events(vec![]);
        AccountTest::with(())
            .given(vec![registered(user), out])
            .when_async(AccountCommand::OptIn {
                at: DateTime::UNIX_EPOCH,
            })
            .await
            .then_expect_events(vec![AccountEvent::OptedIn {
                at: DateTime::UNIX_EPOCH,
            }]);
    }

    #[tokio::test]
    async fn commands_before_registration_are_refused() {
        AccountTest::with(())
            .given_no_previous_events()
            .when_async(AccountCommand::OptIn {
                at: DateTime::UNIX_EPOCH,
            })
            .await
            .then_expect_error(AccountError::NotRegistered);
    }

    #[test]
    fn onboarding_completes_after_name_and_timezone() {
        let user = UserId::new();
        let mut account = Account::default();
        account.apply(registered(user));
        account.apply(AccountEvent::NameSet {
            name: DataKey::generate(user).seal("Sam"),
        });
        assert_eq!(account.onboarding(), Onboarding::NeedsTimezone);
        account.apply(AccountEvent::TimezoneSet {
            timezone: Timezone::parse("Europe/Paris").unwrap(),
        });
        assert_eq!(account.onboarding(), Onboarding::Complete);
    }
}
