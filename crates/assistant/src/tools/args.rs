//! The argument types of the tools. Their doc comments are the descriptions the
//! model reads; their shape is the schema it fills in.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// No arguments.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct NoArgs {}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AddTask {
    /// The task in a few words, in the user's words ("clear the garage floor").
    pub title: String,
    /// When it is due, if the user said: "tomorrow", "friday 5pm", "2026-12-01".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due: Option<String>,
    /// The user's own estimate in minutes, if they gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimate_minutes: Option<u32>,
    /// Words from the title of an existing task this one is a step of.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CompleteTask {
    /// The task's number in the list the user was shown ("2"), or words from its title.
    pub task: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct BreakDown {
    /// The task to split: its number in the list, or its title (new tasks are created).
    pub task: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SetReminder {
    /// What to remind the user to do ("call mom").
    pub text: String,
    /// When: "tomorrow at 9", "in 20 min", "every weekday at 8am", or ISO 8601.
    pub when: String,
}

/// What kind of fact a memory is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    Code,
    Place,
    Person,
    Date,
    Health,
    Preference,
    Fact,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SaveMemory {
    /// The fact, as a short sentence in the user's words ("locker code is 4411").
    pub content: String,
    /// A few lowercase words to find it by ("locker", "gym").
    #[serde(default)]
    pub tags: Vec<String>,
    /// What kind of fact it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<Category>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SearchMemories {
    /// What the user is asking about, in their words ("locker code").
    pub query: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ForgetMemory {
    /// Words naming the fact to forget ("locker code").
    pub what: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CreateCalendarEvent {
    /// The event's title.
    pub title: String,
    /// When it starts: "tomorrow at 3pm" or ISO 8601.
    pub start: String,
    /// How long it lasts in minutes (30 if not said).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minutes: Option<u32>,
}
