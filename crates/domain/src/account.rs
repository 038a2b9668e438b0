//! The Account aggregate: who a user is, how to reach them, and whether they may be texted.
//!
//! One Account per user, keyed by the user id. Its state is a handful of fields, so
//! loading it costs the same however long the user has been around (safety flags
//! stay in it only while they are open).
//!
//! # Safety flags
//!
//! When a message carries a self-harm signal (`crate::safety::assess`), the
//! assistant raises a safety flag here. The flag is what a person follows up
//! (`sidekick flags list|resolve`), and raising it pauses for
//! [`NUDGE_PAUSE`] everything Sidekick would say on its own: someone who just
//! wrote that they want to die must not get "How's the report going?" an hour
//! later. The pause lives on the account, not in the notifier, so every sender
//! (notifier, and later the scheduler) reads the same fact from the log.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::conversation::Channel;
use crate::ids::{PhoneNumber, QuietHours, Timezone, UserId};
use crate::safety::NUDGE_PAUSE;
use crate::sealed::SealedText;
use uuid::Uuid;

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
    /// "nudges off" / "nudges on": check-ins Sidekick sends on its own. Reminders the
    /// user set are not nudges and keep going.
    SetNudges {
        on: bool,
    },
    /// Carrier rules: after an opt-out, nothing but the one confirmation goes out.
    OptOut {
        keyword: String,
        at: DateTime<Utc>,
    },
    OptIn {
        at: DateTime<Utc>,
    },
    /// Inbound message `message_number` carried a self-harm signal: flag the
    /// conversation for a person and pause nudges. The caller derives `flag_id`
    /// from the message, so a retried turn raises one flag, not two.
    RaiseSafetyFlag {
        flag_id: Uuid,
        message_number: u64,
        channel: Channel,
        at: DateTime<Utc>,
    },
    /// A person has followed up on the flag. The note may say how (sealed: it is
    /// about someone's health). The nudge pause still runs its course.
    ResolveSafetyFlag {
        flag_id: Uuid,
        note: Option<SealedText>,
        at: DateTime<Utc>,
    },
    /// The user deleted their account ("My data"). The caller then destroys the
    /// data key and purges the read models; this is the fact the audit shows.
    /// Repeating it changes nothing.
    DeleteAccount {
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
    NudgesSet {
        on: bool,
    },
    OptedOut {
        keyword: String,
        at: DateTime<Utc>,
    },
    OptedIn {
        at: DateTime<Utc>,
    },
    /// The crisis screen caught inbound message `message_number`; crisis
    /// resources were sent and nothing Sidekick says on its own goes out before
    /// `paused_until`. The message itself stays sealed in the conversation.
    SafetyFlagRaised {
        flag_id: Uuid,
        message_number: u64,
        channel: Channel,
        at: DateTime<Utc>,
        paused_until: DateTime<Utc>,
    },
    SafetyFlagResolved {
        flag_id: Uuid,
        note: Option<SealedText>,
        at: DateTime<Utc>,
    },
    /// The account is gone: its data key was destroyed right after, so every sealed
    /// value of this user in the log can no longer be opened. The number may sign
    /// up again, as a new user.
    AccountDeleted {
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
            Self::NudgesSet { .. } => "NudgesSet",
            Self::OptedOut { .. } => "OptedOut",
            Self::OptedIn { .. } => "OptedIn",
            Self::SafetyFlagRaised { .. } => "SafetyFlagRaised",
            Self::SafetyFlagResolved { .. } => "SafetyFlagResolved",
            Self::AccountDeleted { .. } => "AccountDeleted",
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
    /// No open safety flag has this id: it was resolved already, or never raised
    /// for this user. The caller should list open flags and pick again.
    #[error("no open safety flag {0} (already resolved, or not this user's)")]
    FlagNotOpen(Uuid),
    /// The account was deleted; nothing more happens to it. Not retryable.
    #[error("this account was deleted")]
    Deleted,
}

/// A safety flag waiting for a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenSafetyFlag {
    pub message_number: u64,
    pub channel: Channel,
    pub raised_at: DateTime<Utc>,
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
    /// Flags no person has resolved yet. Snapshots from before safety flags
    /// existed decode with none (`serde(default)`), which is what they had.
    #[serde(default)]
    pub open_safety_flags: BTreeMap<Uuid, OpenSafetyFlag>,
    /// Nudges and other unprompted messages wait until then.
    #[serde(default)]
    pub nudges_paused_until: Option<DateTime<Utc>>,
    /// Whether the user turned check-ins off ("nudges off"). Older snapshots had no
    /// setting, which meant on.
    #[serde(default)]
    pub nudges_off: bool,
    /// The highest inbound message number ever flagged: a retried turn for the
    /// same message raises nothing new, even after its flag was resolved.
    #[serde(default)]
    pub last_flagged_message: u64,
    /// The user deleted the account. Older snapshots decode as not deleted.
    #[serde(default)]
    pub deleted: bool,
}

impl Account {
    /// Whether messages Sidekick would send on its own (nudges) must wait at `now`.
    pub fn nudges_paused_at(&self, now: DateTime<Utc>) -> bool {
        self.nudges_paused_until.is_some_and(|until| now < until)
    }

    /// Whether inbound message `number` has raised a safety flag already.
    pub fn flagged_message(&self, number: u64) -> bool {
        number <= self.last_flagged_message
    }

    /// Registered and not deleted: someone Sidekick may talk to.
    pub fn is_registered(&self) -> bool {
        self.user_id.is_some() && !self.deleted
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
        if self.deleted {
            return match command {
                C::DeleteAccount { .. } => Ok(()),
                _ => Err(AccountError::Deleted),
            };
        }
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
            C::SetNudges { on } => {
                if self.nudges_off == on {
                    sink.write(E::NudgesSet { on }, self).await;
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
            C::RaiseSafetyFlag {
                flag_id,
                message_number,
                channel,
                at,
            } => {
                let repeated = self.open_safety_flags.contains_key(&flag_id)
                    || self.flagged_message(message_number);
                if !repeated {
                    let event = E::SafetyFlagRaised {
                        flag_id,
                        message_number,
                        channel,
                        at,
                        paused_until: at + NUDGE_PAUSE,
                    };
                    sink.write(event, self).await;
                }
            }
            C::ResolveSafetyFlag { flag_id, note, at } => {
                if !self.open_safety_flags.contains_key(&flag_id) {
                    return Err(AccountError::FlagNotOpen(flag_id));
                }
                sink.write(E::SafetyFlagResolved { flag_id, note, at }, self)
                    .await;
            }
            C::DeleteAccount { at } => sink.write(E::AccountDeleted { at }, self).await,
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
            E::NudgesSet { on } => self.nudges_off = !on,
            E::OptedOut { .. } => self.opted_out = true,
            E::OptedIn { .. } => self.opted_out = false,
            E::SafetyFlagRaised {
                flag_id,
                message_number,
                channel,
                at,
                paused_until,
            } => {
                self.open_safety_flags.insert(
                    flag_id,
                    OpenSafetyFlag {
                        message_number,
                        channel,
                        raised_at: at,
                    },
                );
                self.last_flagged_message = self.last_flagged_message.max(message_number);
                // A second flag extends the pause; an older one never shortens it.
                self.nudges_paused_until = self.nudges_paused_until.max(Some(paused_until));
            }
            E::SafetyFlagResolved { flag_id, .. } => {
                self.open_safety_flags.remove(&flag_id);
            }
            E::AccountDeleted { .. } => {
                self.deleted = true;
                self.open_safety_flags.clear();
            }
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
    async fn a_deleted_account_is_deleted_once_and_refuses_everything_else() {
        let user = UserId::new();
        let deleted = AccountEvent::AccountDeleted {
            at: DateTime::UNIX_EPOCH,
        };
        AccountTest::with(())
            .given(vec![registered(user)])
            .when_async(AccountCommand::DeleteAccount {
                at: DateTime::UNIX_EPOCH,
            })
            .await
            .then_expect_events(vec![deleted.clone()]);
        AccountTest::with(())
            .given(vec![registered(user), deleted.clone()])
            .when_async(AccountCommand::DeleteAccount {
                at: DateTime::UNIX_EPOCH,
            })
            .await
            .then_expect_events(vec![]);
        AccountTest::with(())
            .given(vec![registered(user), deleted.clone()])
            .when_async(AccountCommand::SetNudges { on: false })
            .await
            .then_expect_error(AccountError::Deleted);
        let mut account = Account::default();
        account.apply(registered(user));
        account.apply(deleted);
        assert!(!account.is_registered());
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

    fn at(hours: i64) -> DateTime<Utc> {
        DateTime::UNIX_EPOCH + chrono::TimeDelta::hours(hours)
    }

    fn raised(flag: Uuid, number: u64, hours: i64) -> AccountEvent {
        AccountEvent::SafetyFlagRaised {
            flag_id: flag,
            message_number: number,
            channel: Channel::Sms,
            at: at(hours),
            paused_until: at(hours + 24),
        }
    }

    #[tokio::test]
    async fn a_crisis_message_raises_a_flag_that_pauses_nudges_for_a_day() {
        let user = UserId::new();
        let flag = Uuid::now_v7();
        AccountTest::with(())
            .given(vec![registered(user)])
            .when_async(AccountCommand::RaiseSafetyFlag {
                flag_id: flag,
                message_number: 3,
                channel: Channel::Sms,
                at: at(0),
            })
            .await
            .then_expect_events(vec![raised(flag, 3, 0)]);
        let mut account = Account::default();
        account.apply(registered(user));
        account.apply(raised(flag, 3, 0));
        assert!(account.nudges_paused_at(at(23)));
        assert!(!account.nudges_paused_at(at(24)));
        assert!(account.open_safety_flags.contains_key(&flag));
    }

    #[tokio::test]
    async fn a_retried_turn_raises_no_second_flag_even_after_resolution() {
        let user = UserId::new();
        let flag = Uuid::now_v7();
        let retry = AccountCommand::RaiseSafetyFlag {
            flag_id: flag,
            message_number: 3,
            channel: Channel::Sms,
            at: at(1),
        };
        AccountTest::with(())
            .given(vec![registered(user), raised(flag, 3, 0)])
            .when_async(retry.clone())
            .await
            .then_expect_events(vec![]);
        let resolved = AccountEvent::SafetyFlagResolved {
            flag_id: flag,
            note: None,
            at: at(2),
        };
        AccountTest::with(())
            .given(vec![registered(user), raised(flag, 3, 0), resolved])
            .when_async(retry)
            .await
            .then_expect_events(vec![]);
    }

    #[tokio::test]
    async fn a_later_flag_extends_the_pause() {
        let user = UserId::new();
        let (first, second) = (Uuid::now_v7(), Uuid::now_v7());
        AccountTest::with(())
            .given(vec![registered(user), raised(first, 3, 0)])
            .when_async(AccountCommand::RaiseSafetyFlag {
                flag_id: second,
                message_number: 5,
                channel: Channel::Web,
                at: at(10),
            })
            .await
            .then_expect_events(vec![AccountEvent::SafetyFlagRaised {
                flag_id: second,
                message_number: 5,
                channel: Channel::Web,
                at: at(10),
                paused_until: at(34),
            }]);
        let mut account = Account::default();
        for e in [registered(user), raised(first, 3, 0), raised(second, 5, 10)] {
            account.apply(e);
        }
        assert!(account.nudges_paused_at(at(30)));
        assert_eq!(account.open_safety_flags.len(), 2);
    }

    #[tokio::test]
    async fn a_person_resolves_an_open_flag_once() {
        let user = UserId::new();
        let flag = Uuid::now_v7();
        let note = DataKey::generate(user).seal("called, they are safe");
        let resolved = AccountEvent::SafetyFlagResolved {
            flag_id: flag,
            note: Some(note.clone()),
            at: at(2),
        };
        AccountTest::with(())
            .given(vec![registered(user), raised(flag, 3, 0)])
            .when_async(AccountCommand::ResolveSafetyFlag {
                flag_id: flag,
                note: Some(note.clone()),
                at: at(2),
            })
            .await
            .then_expect_events(vec![resolved.clone()]);
        AccountTest::with(())
            .given(vec![registered(user), raised(flag, 3, 0), resolved])
            .when_async(AccountCommand::ResolveSafetyFlag {
                flag_id: flag,
                note: None,
                at: at(3),
            })
            .await
            .then_expect_error(AccountError::FlagNotOpen(flag));
        let mut account = Account::default();
        account.apply(registered(user));
        account.apply(raised(flag, 3, 0));
        account.apply(AccountEvent::SafetyFlagResolved {
            flag_id: flag,
            note: None,
            at: at(2),
        });
        assert!(account.open_safety_flags.is_empty());
        assert!(
            account.nudges_paused_at(at(3)),
            "resolving does not cut the pause short"
        );
    }

    #[test]
    fn snapshots_from_before_safety_flags_still_load() {
        let old = serde_json::json!({
            "user_id": null, "phone": null, "name": null, "timezone": "UTC",
            "timezone_confirmed": false,
            "quiet_hours": {"start": "21:00", "end": "08:00"}, "opted_out": false
        });
        let account: Account = serde_json::from_value(old).unwrap();
        assert!(account.open_safety_flags.is_empty());
        assert_eq!(account.nudges_paused_until, None);
    }

    #[test]
    fn new_users_get_quiet_hours_from_nine_to_eight_local() {
        let user = UserId::new();
        let mut account = Account::default();
        account.apply(registered(user));
        let q = account.quiet_hours;
        assert_eq!(
            (q.start.to_string(), q.end.to_string()),
            ("21:00".into(), "08:00".into())
        );
        let local = |h, m| chrono::NaiveTime::from_hms_opt(h, m, 0).unwrap();
        assert!(q.contains(local(21, 0)) && q.contains(local(23, 59)) && q.contains(local(7, 59)));
        assert!(!q.contains(local(8, 0)) && !q.contains(local(20, 59)));
    }

    #[tokio::test]
    async fn nudges_are_switched_off_once_and_back_on() {
        let user = UserId::new();
        AccountTest::with(())
            .given(vec![registered(user)])
            .when_async(AccountCommand::SetNudges { on: false })
            .await
            .then_expect_events(vec![AccountEvent::NudgesSet { on: false }]);
        AccountTest::with(())
            .given(vec![
                registered(user),
                AccountEvent::NudgesSet { on: false },
            ])
            .when_async(AccountCommand::SetNudges { on: false })
            .await
            .then_expect_events(vec![]);
        AccountTest::with(())
            .given(vec![registered(user)])
            .when_async(AccountCommand::SetNudges { on: true })
            .await
            .then_expect_events(vec![]);
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
