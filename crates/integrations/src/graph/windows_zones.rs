//! Windows time-zone names for the IANA zones users live in.
//!
//! Graph's `Prefer: outlook.timezone="…"` and an event's `timeZone` take the
//! names Outlook supports, which are Windows names ("Pacific Standard Time");
//! IANA names are refused by some endpoints. Sidekick stores IANA names, so this
//! table (from the Unicode CLDR `windowsZones` mapping, the common zones only)
//! translates. A zone that is not in it is asked for in UTC and converted here,
//! which gives the same instants; only the labels Graph shows differ.

use chrono_tz::Tz;

/// Windows name, then the IANA zones it stands for; the first is CLDR's
/// representative ("golden") zone, used to read answers labelled with the
/// Windows name.
const ZONES: &[(&str, &[&str])] = &[
    ("UTC", &["Etc/UTC", "UTC", "Etc/GMT"]),
    ("Dateline Standard Time", &["Etc/GMT+12"]),
    ("Hawaiian Standard Time", &["Pacific/Honolulu"]),
    (
        "Alaskan Standard Time",
        &["America/Anchorage", "America/Juneau"],
    ),
    (
        "Pacific Standard Time",
        &["America/Los_Angeles", "America/Vancouver"],
    ),
    ("Pacific Standard Time (Mexico)", &["America/Tijuana"]),
    ("US Mountain Standard Time", &["America/Phoenix"]),
    (
        "Mountain Standard Time",
        &["America/Denver", "America/Edmonton", "America/Boise"],
    ),
    (
        "Central Standard Time",
        &["America/Chicago", "America/Winnipeg"],
    ),
    ("Central Standard Time (Mexico)", &["America/Mexico_City"]),
    ("Canada Central Standard Time", &["America/Regina"]),
    ("Central America Standard Time", &["America/Guatemala"]),
    (
        "Eastern Standard Time",
        &["America/New_York", "America/Toronto", "America/Detroit"],
    ),
    (
        "SA Pacific Standard Time",
        &["America/Bogota", "America/Lima"],
    ),
    ("Atlantic Standard Time", &["America/Halifax"]),
    ("Newfoundland Standard Time", &["America/St_Johns"]),
    ("E. South America Standard Time", &["America/Sao_Paulo"]),
    (
        "Argentina Standard Time",
        &["America/Buenos_Aires", "America/Argentina/Buenos_Aires"],
    ),
    ("Pacific SA Standard Time", &["America/Santiago"]),
    (
        "GMT Standard Time",
        &["Europe/London", "Europe/Dublin", "Europe/Lisbon"],
    ),
    (
        "Greenwich Standard Time",
        &["Atlantic/Reykjavik", "Africa/Accra"],
    ),
    (
        "W. Europe Standard Time",
        &[
            "Europe/Berlin",
            "Europe/Amsterdam",
            "Europe/Rome",
            "Europe/Stockholm",
            "Europe/Vienna",
            "Europe/Zurich",
            "Europe/Oslo",
        ],
    ),
    (
        "Central Europe Standard Time",
        &["Europe/Budapest", "Europe/Prague", "Europe/Belgrade"],
    ),
    (
        "Romance Standard Time",
        &[
            "Europe/Paris",
            "Europe/Brussels",
            "Europe/Copenhagen",
            "Europe/Madrid",
        ],
    ),
    (
        "Central European Standard Time",
        &["Europe/Warsaw", "Europe/Zagreb"],
    ),
    ("W. Central Africa Standard Time", &["Africa/Lagos"]),
    ("GTB Standard Time", &["Europe/Bucharest", "Europe/Athens"]),
    (
        "FLE Standard Time",
        &[
            "Europe/Kiev",
            "Europe/Kyiv",
            "Europe/Helsinki",
            "Europe/Riga",
            "Europe/Sofia",
            "Europe/Tallinn",
            "Europe/Vilnius",
        ],
    ),
    ("Israel Standard Time", &["Asia/Jerusalem"]),
    ("Egypt Standard Time", &["Africa/Cairo"]),
    ("South Africa Standard Time", &["Africa/Johannesburg"]),
    ("Turkey Standard Time", &["Europe/Istanbul"]),
    ("Russian Standard Time", &["Europe/Moscow"]),
    ("E. Africa Standard Time", &["Africa/Nairobi"]),
    ("Arab Standard Time", &["Asia/Riyadh"]),
    ("Arabian Standard Time", &["Asia/Dubai"]),
    ("Iran Standard Time", &["Asia/Tehran"]),
    ("Pakistan Standard Time", &["Asia/Karachi"]),
    ("India Standard Time", &["Asia/Calcutta", "Asia/Kolkata"]),
    ("Nepal Standard Time", &["Asia/Katmandu", "Asia/Kathmandu"]),
    ("Bangladesh Standard Time", &["Asia/Dhaka"]),
    (
        "SE Asia Standard Time",
        &[
            "Asia/Bangkok",
            "Asia/Jakarta",
            "Asia/Saigon",
            "Asia/Ho_Chi_Minh",
        ],
    ),
    ("China Standard Time", &["Asia/Shanghai", "Asia/Hong_Kong"]),
    (
        "Singapore Standard Time",
        &["Asia/Singapore", "Asia/Kuala_Lumpur", "Asia/Manila"],
    ),
    ("Taipei Standard Time", &["Asia/Taipei"]),
    ("W. Australia Standard Time", &["Australia/Perth"]),
    ("Tokyo Standard Time", &["Asia/Tokyo"]),
    ("Korea Standard Time", &["Asia/Seoul"]),
    ("Cen. Australia Standard Time", &["Australia/Adelaide"]),
    ("AUS Central Standard Time", &["Australia/Darwin"]),
    ("E. Australia Standard Time", &["Australia/Brisbane"]),
    (
        "AUS Eastern Standard Time",
        &["Australia/Sydney", "Australia/Melbourne"],
    ),
    ("Tasmania Standard Time", &["Australia/Hobart"]),
    ("New Zealand Standard Time", &["Pacific/Auckland"]),
];

/// The Windows name Outlook uses for `tz`, if the table knows it.
pub fn windows_name(tz: Tz) -> Option<&'static str> {
    let name = tz.name();
    ZONES
        .iter()
        .find(|(_, iana)| iana.contains(&name))
        .map(|(windows, _)| *windows)
}

/// The IANA zone a label in a Graph answer stands for: a Windows name from the
/// table, an IANA name, or UTC under any of its spellings.
pub fn zone_for_label(label: &str) -> Option<Tz> {
    let label = label.trim();
    if matches!(
        label,
        "UTC" | "Coordinated Universal Time" | "tzone://Microsoft/Utc" | "Etc/UTC" | "Z"
    ) {
        return Some(chrono_tz::UTC);
    }
    if let Some((_, iana)) = ZONES.iter().find(|(windows, _)| *windows == label) {
        return iana.first().and_then(|name| name.parse().ok());
    }
    label.parse().ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests a panic is the failure report
mod tests {
    use super::*;

    #[test]
    fn every_iana_name_in_the_table_is_known_to_chrono_tz() {
        for (windows, iana) in ZONES {
            assert!(!iana.is_empty(), "{windows}");
            for name in *iana {
                assert!(name.parse::<Tz>().is_ok(), "{windows}: {name}");
            }
        }
    }

    #[test]
    fn maps_both_ways() {
        assert_eq!(
            windows_name(chrono_tz::America::New_York),
            Some("Eastern Standard Time")
        );
        assert_eq!(
            windows_name(chrono_tz::Europe::Amsterdam),
            Some("W. Europe Standard Time")
        );
        assert_eq!(windows_name(chrono_tz::UTC), Some("UTC"));
        assert_eq!(windows_name(chrono_tz::Antarctica::Troll), None);
        assert_eq!(
            zone_for_label("Pacific Standard Time"),
            Some(chrono_tz::America::Los_Angeles)
        );
        assert_eq!(zone_for_label("UTC"), Some(chrono_tz::UTC));
        assert_eq!(
            zone_for_label("Europe/Lisbon"),
            Some(chrono_tz::Europe::Lisbon)
        );
        assert_eq!(zone_for_label("Middle Earth Standard Time"), None);
    }

    #[test]
    fn zones_sharing_a_windows_name_keep_the_same_rules_today() {
        // Reading an answer labelled "W. Europe Standard Time" in Berlin's rules
        // must give the same instants as in Amsterdam's.
        use chrono::{NaiveDate, TimeZone as _};
        let summer = NaiveDate::from_ymd_opt(2025, 7, 1)
            .unwrap()
            .and_hms_opt(9, 0, 0)
            .unwrap();
        let winter = NaiveDate::from_ymd_opt(2025, 12, 1)
            .unwrap()
            .and_hms_opt(9, 0, 0)
            .unwrap();
        for (_, iana) in ZONES {
            let zones: Vec<Tz> = iana.iter().map(|n| n.parse().unwrap()).collect();
            for local in [summer, winter] {
                let instants: Vec<_> = zones
                    .iter()
                    .map(|tz| tz.from_local_datetime(&local).earliest().unwrap())
                    .map(|t| t.naive_utc())
                    .collect();
                assert!(
                    instants.windows(2).all(|w| w[0] == w[1]),
                    "{iana:?} disagree at {local}"
                );
            }
        }
    }
}
