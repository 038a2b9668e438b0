//! Big, vague tasks turned into small first steps, from a curated library.
//!
//! "Clean the garage" is not a task to a brain with ADHD; it is a wall.
//! "Put a bin bag by the garage door" is a task. Each [`Recipe`] here is a
//! common hard task broken into 3–7 steps of at most fifteen minutes, and
//! the first step is always tiny (five minutes or less), physical and
//! obvious, because starting is the hard part (ADHD.md: one next step, sized
//! to real attention). A task no recipe fits still gets the same shape from
//! [`generic_steps`].
//!
//! Matching is by keywords and their plurals ("garage", "inbox", "taxes"),
//! scored by how many a task mentions; the more specific recipes come first
//! in the table, so "clean the kitchen" is the kitchen and not just cleaning.
//! Step texts are short enough that three fit in one text message.

use crate::when::tokenize;

/// The longest a step may be, in minutes.
pub const MAX_STEP_MINUTES: u32 = 15;
/// The longest the first step may be: small enough to start right now.
pub const MAX_FIRST_STEP_MINUTES: u32 = 5;
/// The longest a step text may be, so a short list fits in one SMS.
pub const MAX_STEP_CHARS: usize = 72;

/// One concrete step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub text: String,
    pub minutes: u32,
}

/// A task broken down.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Breakdown {
    /// The library recipe used, or `None` for the generic steps.
    pub recipe: Option<&'static str>,
    pub steps: Vec<Step>,
}

/// A common hard task and its steps.
#[derive(Debug, Clone, Copy)]
pub struct Recipe {
    pub name: &'static str,
    /// Words (or short phrases) that point at this recipe; plurals match too.
    pub keywords: &'static [&'static str],
    pub steps: &'static [(&'static str, u32)],
}

/// The steps for `task`: a library recipe when one fits, otherwise generic
/// steps built around the task's own words.
pub fn break_down(task: &str) -> Breakdown {
    match best_recipe(task) {
        Some(recipe) => Breakdown {
            recipe: Some(recipe.name),
            steps: recipe
                .steps
                .iter()
                .map(|&(text, minutes)| Step {
                    text: text.to_owned(),
                    minutes,
                })
                .collect(),
        },
        None => Breakdown {
            recipe: None,
            steps: generic_steps(task),
        },
    }
}

/// The recipe that fits `task` best, if any does.
pub fn best_recipe(task: &str) -> Option<&'static Recipe> {
    let words: Vec<String> = tokenize(task).into_iter().map(|t| t.word).collect();
    let mut best: Option<(usize, &Recipe)> = None;
    for recipe in RECIPES {
        let score = score(recipe, &words);
        if score > 0 && best.is_none_or(|(top, _)| score > top) {
            best = Some((score, recipe));
        }
    }
    best.map(|(_, recipe)| recipe)
}

/// Every recipe in the library.
pub fn recipes() -> &'static [Recipe] {
    RECIPES
}

/// How many of the recipe's keywords the task mentions; a phrase counts for
/// each of its words, so "cover letter" outweighs "letter".
fn score(recipe: &Recipe, words: &[String]) -> usize {
    recipe
        .keywords
        .iter()
        .filter_map(|keyword| {
            let parts: Vec<&str> = keyword.split(' ').collect();
            let found = words.windows(parts.len()).any(|window| {
                window
                    .iter()
                    .zip(&parts)
                    .all(|(word, part)| same_word(word, part))
            });
            found.then_some(parts.len())
        })
        .sum()
}

/// `word` is `keyword` or a plural or -ing form of it.
fn same_word(word: &str, keyword: &str) -> bool {
    word == keyword
        || word
            .strip_prefix(keyword)
            .is_some_and(|rest| matches!(rest, "s" | "es" | "ing"))
}

/// Steps that fit any task: get set up, name the next action, do fifteen
/// minutes of it, breathe, and decide. The task's words keep them concrete.
pub fn generic_steps(task: &str) -> Vec<Step> {
    let name = short_name(task);
    let step = |text: String, minutes| Step { text, minutes };
    vec![
        step(format!("Put what you need for {name} in front of you"), 3),
        step(format!("Write the next action for {name} in one line"), 3),
        step(
            "Set a 15-minute timer and do just that action".to_owned(),
            15,
        ),
        step("Stand up, drink some water, stretch".to_owned(), 5),
        step(
            "Another 15 minutes, or note where you stopped".to_owned(),
            15,
        ),
    ]
}

/// The task, quoted and cut to fit a step text.
fn short_name(task: &str) -> String {
    const MAX: usize = 24;
    let trimmed = task.trim().trim_end_matches(['.', '!', '?']);
    if trimmed.is_empty() {
        return "it".to_owned();
    }
    if trimmed.chars().count() <= MAX {
        return format!("\"{trimmed}\"");
    }
    let cut: String = trimmed.chars().take(MAX - 1).collect();
    format!("\"{}…\"", cut.trim_end())
}

/// The library. More specific recipes come before broader ones: on a tie
/// the earlier one wins.
const RECIPES: &[Recipe] = &[
    Recipe {
        name: "garage",
        keywords: &[
            "garage",
            "shed",
            "basement",
            "attic",
            "storage unit",
            "loft",
        ],
        steps: &[
            ("Put a bin bag and an empty box by the garage door", 2),
            ("Set a 15-minute timer and bag the obvious trash", 15),
            ("Put things that belong in the house into the box", 10),
            ("Sort one shelf into keep, donate and toss", 15),
            ("Take the trash out and the donate pile to the car", 5),
        ],
    },
    Recipe {
        name: "kitchen",
        keywords: &["kitchen", "counter", "counters", "stove", "oven", "fridge"],
        steps: &[
            ("Clear one spot next to the sink", 2),
            ("Load or wash the dishes that are out", 15),
            ("Put away everything that lives in a cupboard", 10),
            ("Wipe the counters and the stove top", 10),
            ("Take out the kitchen trash", 5),
        ],
    },
    Recipe {
        name: "dishes",
        keywords: &["dishes", "dish", "dishwasher", "washing up", "pots", "pans"],
        steps: &[
            (
                "Fill the sink with hot soapy water, or open the dishwasher",
                3,
            ),
            ("Wash or load cups and cutlery first", 10),
            ("Then plates and bowls", 10),
            ("Pots and pans last; leave the big ones to soak", 10),
        ],
    },
    Recipe {
        name: "laundry",
        keywords: &["laundry", "washing", "clothes", "wash clothes", "ironing"],
        steps: &[
            ("Carry the laundry basket to the machine", 3),
            ("Load it, add detergent and press start", 5),
            ("Set a phone timer for when it finishes", 1),
            ("Move it to the dryer or the rack", 10),
            ("Fold or hang the tops, then the rest", 15),
            ("Put one pile away in its drawer", 5),
        ],
    },
    Recipe {
        name: "bathroom",
        keywords: &["bathroom", "toilet", "shower", "bathtub", "tub", "sink"],
        steps: &[
            ("Put the cleaning spray and a cloth in the bathroom", 3),
            ("Spray the sink, toilet and shower; let it soak", 3),
            ("Wipe the sink and the mirror", 5),
            ("Scrub the toilet, inside and out", 10),
            ("Rinse the shower and swap the towels", 10),
        ],
    },
    Recipe {
        name: "bedroom",
        keywords: &["bedroom", "room", "bed", "floor"],
        steps: &[
            ("Put every piece of clothing on the floor into one pile", 5),
            ("Dirty clothes into the basket, clean ones on the bed", 5),
            ("Take every cup and plate to the kitchen", 5),
            ("Set a 10-minute timer and put things where they live", 10),
            ("Clear the bed and make it", 5),
        ],
    },
    Recipe {
        name: "taxes",
        keywords: &[
            "tax",
            "taxes",
            "tax return",
            "irs",
            "hmrc",
            "self assessment",
            "w2",
        ],
        steps: &[
            ("Put last year's return or an empty folder on the table", 5),
            ("List the income papers you expect (W-2, 1099, P60)", 10),
            ("Put the ones you already have in the folder", 15),
            ("Log in to the tax site or open the software", 10),
            ("Fill in only the personal details section", 15),
        ],
    },
    Recipe {
        name: "email backlog",
        keywords: &[
            "email", "emails", "inbox", "e mail", "backlog", "gmail", "outlook",
        ],
        steps: &[
            ("Open your inbox on a computer", 2),
            ("Archive everything older than 30 days, unread", 5),
            ("Unsubscribe from three newsletters", 10),
            ("Reply to the three quickest emails", 15),
            ("Star the ones that need more than 5 minutes", 5),
        ],
    },
    Recipe {
        name: "moving",
        keywords: &[
            "moving",
            "move",
            "relocate",
            "packing",
            "pack",
            "boxes",
            "new place",
        ],
        steps: &[
            ("Put one empty box in the room you use least", 3),
            ("Fill it with things you won't need this month", 15),
            ("Label it with the room and what is inside", 2),
            ("List who needs your new address", 10),
            ("Get a price for a van or movers", 15),
        ],
    },
    Recipe {
        name: "studying",
        keywords: &[
            "study", "studying", "exam", "exams", "test", "revise", "revision", "homework",
            "midterm", "final", "finals", "quiz", "lecture",
        ],
        steps: &[
            ("Put your notes and a pen on the desk", 3),
            ("Write the exam topics as a list", 10),
            ("Circle the topic you know least", 2),
            ("15-minute timer: practice questions on that topic", 15),
            ("Write three things you remember without looking", 5),
        ],
    },
    Recipe {
        name: "job applications",
        keywords: &[
            "job",
            "jobs",
            "apply",
            "application",
            "applications",
            "resume",
            "cv",
            "cover letter",
            "linkedin",
            "interview",
        ],
        steps: &[
            ("Open your resume file", 2),
            ("Find two job postings and save the links", 15),
            ("Copy three keywords from the first posting", 5),
            ("Work those keywords into your resume summary", 15),
            ("Fill in the application and press submit", 15),
        ],
    },
    Recipe {
        name: "doctor appointment",
        keywords: &[
            "doctor",
            "dentist",
            "appointment",
            "gp",
            "checkup",
            "check up",
            "therapist",
            "clinic",
            "physio",
            "optician",
            "prescription",
            "vet",
        ],
        steps: &[
            ("Find the clinic's number or booking page", 3),
            ("Write down two times that would suit you", 3),
            ("Call or book online", 10),
            ("Put it in your calendar with a reminder", 3),
        ],
    },
    Recipe {
        name: "bills",
        keywords: &[
            "bill",
            "bills",
            "rent",
            "invoice",
            "utilities",
            "payment",
            "pay",
            "overdue",
        ],
        steps: &[
            ("Open your banking app", 2),
            ("List this month's bills with their due dates", 10),
            ("Pay the one due soonest", 5),
            ("Set up autopay for one of the others", 10),
        ],
    },
    Recipe {
        name: "decluttering",
        keywords: &[
            "declutter",
            "clutter",
            "closet",
            "wardrobe",
            "drawer",
            "drawers",
            "donate",
            "stuff",
        ],
        steps: &[
            ("Put an empty bag by the closet for donations", 2),
            ("Put five things you don't use into the bag", 5),
            ("Pull out anything you haven't worn in a year", 15),
            ("Tie the bag and put it by the front door", 2),
        ],
    },
    Recipe {
        name: "writing",
        keywords: &[
            "report",
            "essay",
            "paper",
            "thesis",
            "article",
            "proposal",
            "blog",
            "draft",
            "dissertation",
            "chapter",
        ],
        steps: &[
            ("Open a blank document and type the title", 2),
            ("Write the headings as a bullet list", 10),
            ("Under one heading, write one ugly sentence", 5),
            ("15-minute timer: keep writing that section", 15),
            ("Note what comes next, so tomorrow starts easy", 5),
        ],
    },
    Recipe {
        name: "presentation",
        keywords: &[
            "presentation",
            "slides",
            "deck",
            "talk",
            "pitch",
            "powerpoint",
            "keynote",
        ],
        steps: &[
            ("Open a new slide deck and type the title", 2),
            ("Write one slide title per point you must make", 10),
            ("Fill in the three most important slides", 15),
            ("Say it out loud once with a timer", 15),
        ],
    },
    Recipe {
        name: "groceries",
        keywords: &[
            "groceries",
            "grocery",
            "food shop",
            "supermarket",
            "meal prep",
            "shopping list",
        ],
        steps: &[
            ("Open the fridge and look at what is missing", 2),
            ("Write the shopping list", 10),
            ("Pick a time to go, or book a delivery slot", 5),
            ("Shop from the list, nothing else", 15),
        ],
    },
    Recipe {
        name: "forms",
        keywords: &[
            "form",
            "forms",
            "paperwork",
            "passport",
            "renew",
            "renewal",
            "license",
            "licence",
            "visa",
            "insurance",
            "claim",
            "id",
            "registration",
            "dmv",
        ],
        steps: &[
            ("Put the form, or its web page, in front of you", 2),
            ("Gather the ID, photos or numbers it asks for", 10),
            ("Fill in the easy fields first", 15),
            ("Fill in the rest; mark any you can't answer", 15),
            ("Submit it, or put it by the door to post", 5),
        ],
    },
    Recipe {
        name: "phone call",
        keywords: &["call", "phone", "ring", "voicemail", "callback"],
        steps: &[
            ("Put your phone and the number in front of you", 2),
            ("Write the one thing you need from the call", 3),
            ("Call; if nobody answers, leave a short message", 10),
            ("Write down what they said and the next step", 5),
        ],
    },
    Recipe {
        name: "exercise",
        keywords: &[
            "workout", "exercise", "gym", "run", "jog", "yoga", "training", "walk",
        ],
        steps: &[
            ("Put your shoes on", 2),
            ("Fill a water bottle", 2),
            ("Do 10 minutes of anything that moves you", 10),
            ("Stretch for 5 minutes", 5),
        ],
    },
    Recipe {
        name: "car",
        keywords: &[
            "car",
            "oil change",
            "mot",
            "inspection",
            "tyres",
            "tires",
            "service",
        ],
        steps: &[
            ("Put the car keys and papers together by the door", 3),
            ("Book the service or wash online or by phone", 10),
            ("Put the booking in your calendar", 2),
            ("Clear the trash out of the car", 10),
        ],
    },
    Recipe {
        name: "budget",
        keywords: &[
            "budget",
            "budgeting",
            "finances",
            "spending",
            "savings",
            "subscriptions",
        ],
        steps: &[
            ("Open your banking app", 2),
            ("Write down last month's income", 5),
            ("Add up rent, bills and subscriptions", 15),
            ("Pick one spending category to watch this month", 5),
        ],
    },
    Recipe {
        name: "errands",
        keywords: &[
            "errand",
            "errands",
            "return",
            "returns",
            "post office",
            "parcel",
            "package",
            "pharmacy",
        ],
        steps: &[
            ("Put everything that has to go out by the front door", 5),
            ("List the stops in the order you'll pass them", 5),
            ("Do the first stop", 15),
            ("Do the next stop, or call it a day", 15),
        ],
    },
    Recipe {
        name: "garden",
        keywords: &[
            "garden", "yard", "lawn", "weeds", "weeding", "mow", "hedge", "leaves",
        ],
        steps: &[
            ("Put on your shoes and gloves", 3),
            ("Pull weeds in one patch for 15 minutes", 15),
            ("Mow or trim one section", 15),
            ("Put the tools away", 5),
        ],
    },
    Recipe {
        name: "cleaning",
        keywords: &[
            "clean",
            "cleaning",
            "tidy",
            "house",
            "apartment",
            "flat",
            "mess",
            "vacuum",
            "hoover",
            "dust",
        ],
        steps: &[
            ("Put a bin bag in the middle of the room", 2),
            ("Set a 10-minute timer and bag all the trash", 10),
            ("Take dishes to the kitchen, clothes to the basket", 10),
            ("Clear and wipe one surface", 5),
            ("Vacuum the middle of the floor", 10),
        ],
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    /// First steps start with something the body does, not a decision.
    const PHYSICAL_OPENERS: &[&str] = &[
        "Put", "Open", "Carry", "Clear", "Fill", "Find", "Take", "Pick", "Stand",
    ];

    fn check_steps(name: &str, steps: &[Step]) -> Vec<String> {
        let mut problems = Vec::new();
        if !(3..=7).contains(&steps.len()) {
            problems.push(format!("{name}: {} steps", steps.len()));
        }
        for (i, step) in steps.iter().enumerate() {
            if step.minutes == 0 || step.minutes > MAX_STEP_MINUTES {
                problems.push(format!("{name}: step {i} takes {} min", step.minutes));
            }
            if step.text.chars().count() > MAX_STEP_CHARS {
                problems.push(format!("{name}: step {i} is too long: {}", step.text));
            }
        }
        match steps.first() {
            Some(first) if first.minutes > MAX_FIRST_STEP_MINUTES => {
                problems.push(format!("{name}: first step takes {} min", first.minutes));
            }
            Some(first)
                if !PHYSICAL_OPENERS
                    .iter()
                    .any(|verb| first.text.starts_with(&format!("{verb} "))) =>
            {
                problems.push(format!(
                    "{name}: first step is not physical: {}",
                    first.text
                ));
            }
            _ => {}
        }
        problems
    }

    #[test]
    fn every_recipe_obeys_the_rules() {
        let problems: Vec<String> = recipes()
            .iter()
            .flat_map(|recipe| {
                let steps: Vec<Step> = recipe
                    .steps
                    .iter()
                    .map(|&(text, minutes)| Step {
                        text: text.to_owned(),
                        minutes,
                    })
                    .collect();
                check_steps(recipe.name, &steps)
            })
            .collect();
        assert!(problems.is_empty(), "{}", problems.join("\n"));
        assert!(recipes().len() >= 20, "{}", recipes().len());
    }

    #[test]
    fn generic_steps_obey_the_rules_for_any_task() {
        for task in [
            "sort out the thing with the landlord and the deposit before it gets worse",
            "x",
            "",
            "🙃",
        ] {
            let steps = generic_steps(task);
            let problems = check_steps(task, &steps);
            assert!(problems.is_empty(), "{}", problems.join("\n"));
        }
        assert_eq!(
            generic_steps("fix the bike")
                .first()
                .map(|s| s.text.as_str()),
            Some("Put what you need for \"fix the bike\" in front of you")
        );
    }

    #[test]
    fn keywords_are_lowercase_and_belong_to_one_recipe() {
        let mut seen = std::collections::HashMap::new();
        for recipe in recipes() {
            for keyword in recipe.keywords {
                assert_eq!(keyword.to_lowercase(), *keyword);
                if let Some(other) = seen.insert(*keyword, recipe.name) {
                    panic!("{keyword:?} is in both {other} and {}", recipe.name);
                }
            }
        }
    }

    #[test]
    fn common_tasks_find_their_recipe() {
        let cases: &[(&str, Option<&str>)] = &[
            ("clean the garage", Some("garage")),
            ("Clean the kitchen", Some("kitchen")),
            ("do the dishes", Some("dishes")),
            ("laundry", Some("laundry")),
            ("clean bathroom", Some("bathroom")),
            ("tidy my room", Some("bedroom")),
            ("do my taxes", Some("taxes")),
            ("file tax return", Some("taxes")),
            ("email backlog", Some("email backlog")),
            ("get through my inbox", Some("email backlog")),
            ("pack for the move", Some("moving")),
            ("study for the biology exam", Some("studying")),
            ("apply for jobs", Some("job applications")),
            ("write cover letter", Some("job applications")),
            ("book a doctor appointment", Some("doctor appointment")),
            ("call the dentist", Some("doctor appointment")),
            ("pay bills", Some("bills")),
            ("declutter closet", Some("decluttering")),
            ("write the quarterly report", Some("writing")),
            ("finish my essay", Some("writing")),
            ("make slides for monday", Some("presentation")),
            ("renew passport", Some("forms")),
            ("call the insurance company", Some("forms")),
            ("call grandma", Some("phone call")),
            ("go to the gym", Some("exercise")),
            ("get the car serviced", Some("car")),
            ("make a budget", Some("budget")),
            ("return the package", Some("errands")),
            ("mow the lawn", Some("garden")),
            ("clean the house", Some("cleaning")),
            ("fix the bike", None),
            ("", None),
        ];
        let failures: Vec<String> = cases
            .iter()
            .filter_map(|(task, want)| {
                let got = break_down(task).recipe;
                (got != *want).then(|| format!("{task:?}: want {want:?}, got {got:?}"))
            })
            .collect();
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn every_recipe_is_reachable_by_its_own_keywords() {
        for recipe in recipes() {
            let first = recipe.keywords.first().copied().unwrap_or_default();
            assert_eq!(
                best_recipe(first).map(|r| r.name),
                Some(recipe.name),
                "{first:?}"
            );
        }
    }
}
