//! Turning what someone texts during onboarding into a timezone.
//!
//! Quiet hours, morning messages and "remind me at 3" all depend on the user's
//! local time, so onboarding asks "What city are you in?". People answer the
//! way they talk — "NYC", "i'm in paris!", "Pacific time", "São Paulo, Brazil",
//! "Europe/Berlin" — and every extra round trip is a chance to lose someone's
//! attention. [`timezone_from_text`] takes all of those in one go.
//!
//! It is deliberately conservative: when a place spans several zones (the US,
//! Canada, Australia, Brazil, Russia, Mexico as countries) or an abbreviation is
//! ambiguous worldwide (IST, "GMT+2" without a place), it returns `None` so the
//! caller asks for a city rather than guessing an hour wrong for months. Names
//! shared by two well-known places resolve to the larger one (London, UK over
//! London, Ontario; Perth, Australia over Perth, Scotland); the caller should echo
//! the zone back ("Got it — London time") so a wrong guess is corrected at once.
//!
//! Fixed-offset answers ("UTC-5") are not accepted: they are right only half the
//! year wherever daylight saving applies, and a reminder an hour off teaches the
//! user not to trust it.

use chrono_tz::{Africa, America, Asia, Atlantic, Australia, Europe, Indian, Pacific, Tz};

/// The timezone a user most plausibly means by `text`, or `None` when it is
/// not recognisable or would be a guess.
///
/// Accepts, in order of precedence:
/// 1. an IANA name in any case, with spaces for underscores ("america/new york");
/// 2. a zone abbreviation or name as the whole answer ("EST", "Pacific time", "CET");
/// 3. a city, country or single-zone US state, as the whole answer or inside a
///    sentence ("I'm in Paris", "near Boston, MA", "NYC").
pub fn timezone_from_text(text: &str) -> Option<Tz> {
    if let Some(tz) = iana_in(text) {
        return Some(tz);
    }
    let normalised = normalise(text);
    let words: Vec<&str> = normalised.split(' ').filter(|w| !w.is_empty()).collect();
    let core = strip_filler(&words).join(" ");
    if core.is_empty() {
        return None;
    }
    lookup(ZONE_NAMES, &core)
        .or_else(|| lookup(PLACES, &core))
        .or_else(|| lookup(WHOLE_ANSWER_ONLY, &core))
        .or_else(|| find_place_within(&words))
}

/// An IANA zone name typed as such. Only tokens with a '/' are tried inside a
/// sentence: bare legacy names like "EST" or "MST" are fixed offsets without
/// daylight saving in the IANA database, which is not what people mean by them,
/// so those go through [`ZONE_NAMES`] instead.
fn iana_in(text: &str) -> Option<Tz> {
    let trimmed = text.trim().trim_end_matches(['.', '!', '?', ',']);
    let whole = trimmed.replace(' ', "_");
    if whole.contains('/') {
        if let Some(tz) = iana(&whole) {
            return Some(tz);
        }
    }
    trimmed
        .split_whitespace()
        .map(|w| w.trim_matches(|c: char| !(c.is_alphanumeric() || "/_-+".contains(c))))
        .filter(|w| w.contains('/'))
        .find_map(iana)
}

fn iana(name: &str) -> Option<Tz> {
    chrono_tz::TZ_VARIANTS
        .iter()
        .copied()
        .find(|tz| tz.name().eq_ignore_ascii_case(name))
}

/// Lowercase ASCII words separated by single spaces: accents folded
/// ("São Paulo" → "sao paulo"), apostrophes and dots dropped so "I'm" → "im",
/// "St. Louis" → "st louis" and "L.A." → "la", everything else a separator.
fn normalise(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars().flat_map(char::to_lowercase) {
        match c {
            '\'' | '’' | '‘' | '.' | '`' => {}
            c if c.is_ascii_alphanumeric() => out.push(c),
            c => match fold_accent(c) {
                Some(folded) => out.push_str(folded),
                None => out.push(' '),
            },
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// ASCII spelling of the accented Latin letters that appear in city names.
fn fold_accent(c: char) -> Option<&'static str> {
    Some(match c {
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' | 'ă' | 'ą' => "a",
        'ç' | 'ć' | 'č' => "c",
        'ď' | 'đ' => "d",
        'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ė' | 'ę' | 'ě' => "e",
        'ğ' => "g",
        'ì' | 'í' | 'î' | 'ï' | 'ī' | 'ı' => "i",
        'ł' => "l",
        'ñ' | 'ń' | 'ň' => "n",
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' | 'ő' => "o",
        'ř' => "r",
        'ś' | 'š' | 'ş' | 'ș' => "s",
        'ț' | 'ţ' | 'ť' => "t",
        'ù' | 'ú' | 'û' | 'ü' | 'ū' | 'ů' | 'ű' => "u",
        'ý' | 'ÿ' => "y",
        'ź' | 'ż' | 'ž' => "z",
        'ß' => "ss",
        'æ' => "ae",
        'œ' => "oe",
        'þ' => "th",
        _ => return None,
    })
}

/// Words people wrap an answer in ("I'm currently based in …", "… time zone
/// please"). Stripped from both ends only, so a place's own words survive.
const LEADING_FILLER: &[&str] = &[
    "hi",
    "hey",
    "hello",
    "ok",
    "okay",
    "so",
    "well",
    "um",
    "uh",
    "im",
    "i",
    "am",
    "we",
    "were",
    "live",
    "living",
    "lives",
    "based",
    "currently",
    "now",
    "right",
    "at",
    "the",
    "moment",
    "in",
    "near",
    "on",
    "from",
    "around",
    "outside",
    "by",
    "my",
    "our",
    "its",
    "it",
    "is",
    "timezone",
    "time",
    "zone",
    "tz",
    "city",
    "of",
    "greater",
    "metro",
    "area",
    "just",
    "stay",
    "staying",
];
const TRAILING_FILLER: &[&str] = &[
    "time",
    "zone",
    "timezone",
    "tz",
    "standard",
    "daylight",
    "saving",
    "savings",
    "area",
    "now",
    "please",
    "pls",
    "plz",
    "thanks",
    "thank",
    "you",
    "thx",
    "currently",
    "us",
    "usa",
    "for",
    "me",
    "lol",
];

fn strip_filler<'a>(words: &'a [&'a str]) -> &'a [&'a str] {
    let start = words
        .iter()
        .position(|w| !LEADING_FILLER.contains(w))
        .unwrap_or(words.len());
    let rest = &words[start..];
    let end = rest
        .iter()
        .rposition(|w| !TRAILING_FILLER.contains(w))
        .map_or(0, |i| i + 1);
    &rest[..end]
}

fn lookup(table: &[(&str, Tz)], key: &str) -> Option<Tz> {
    table
        .iter()
        .find(|(name, _)| *name == key)
        .map(|&(_, tz)| tz)
}

/// The leftmost place named inside a longer answer ("moved to Denver last
/// year", "Boston MA"), longest name first at each position so "new york"
/// wins over "york". Names shorter than three letters are only trusted as the
/// whole answer: "la" and "sf" are too easily part of other words or languages.
fn find_place_within(words: &[&str]) -> Option<Tz> {
    const LONGEST_NAME_IN_WORDS: usize = 4;
    (0..words.len()).find_map(|start| {
        (1..=LONGEST_NAME_IN_WORDS.min(words.len() - start))
            .rev()
            .find_map(|len| {
                let phrase = words[start..start + len].join(" ");
                (phrase.len() >= 3)
                    .then(|| lookup(PLACES, &phrase))
                    .flatten()
            })
    })
}

/// Zone abbreviations and names, trusted only as the whole answer: "central"
/// inside "central London" or "eastern" inside "eastern Europe" is not a zone.
///
/// Where an abbreviation is also a bare IANA name (EST, MST, CET), this table
/// wins on purpose: IANA's "EST" has no daylight saving, but a person who says
/// EST means New York time all year.
const ZONE_NAMES: &[(&str, Tz)] = &[
    ("est", America::New_York),
    ("edt", America::New_York),
    ("et", America::New_York),
    ("eastern", America::New_York),
    ("east coast", America::New_York),
    ("cst", America::Chicago),
    ("cdt", America::Chicago),
    ("ct", America::Chicago),
    ("central", America::Chicago),
    ("mst", America::Denver),
    ("mdt", America::Denver),
    ("mt", America::Denver),
    ("mountain", America::Denver),
    ("pst", America::Los_Angeles),
    ("pdt", America::Los_Angeles),
    ("pt", America::Los_Angeles),
    ("pacific", America::Los_Angeles),
    ("west coast", America::Los_Angeles),
    ("akst", America::Anchorage),
    ("akdt", America::Anchorage),
    ("hst", Pacific::Honolulu),
    ("ast", America::Halifax),
    ("adt", America::Halifax),
    ("atlantic", America::Halifax),
    ("nst", America::St_Johns),
    ("ndt", America::St_Johns),
    ("newfoundland", America::St_Johns),
    ("gmt", Europe::London),
    ("bst", Europe::London),
    ("british", Europe::London),
    ("utc", Tz::UTC),
    ("zulu", Tz::UTC),
    ("wet", Europe::Lisbon),
    ("cet", Europe::Paris),
    ("cest", Europe::Paris),
    ("central european", Europe::Paris),
    ("eet", Europe::Athens),
    ("eest", Europe::Athens),
    ("eastern european", Europe::Athens),
    ("msk", Europe::Moscow),
    ("jst", Asia::Tokyo),
    ("kst", Asia::Seoul),
    ("hkt", Asia::Hong_Kong),
    ("sgt", Asia::Singapore),
    ("aest", Australia::Sydney),
    ("aedt", Australia::Sydney),
    ("acst", Australia::Adelaide),
    ("acdt", Australia::Adelaide),
    ("awst", Australia::Perth),
    ("nzst", Pacific::Auckland),
    ("nzdt", Pacific::Auckland),
];

/// Short names that are places only when they are the entire answer: two
/// letters are too common inside other words to find within a sentence.
const WHOLE_ANSWER_ONLY: &[(&str, Tz)] = &[
    ("la", America::Los_Angeles),
    ("sf", America::Los_Angeles),
    ("ny", America::New_York),
    ("dc", America::New_York),
    ("uk", Europe::London),
    ("gb", Europe::London),
    ("hk", Asia::Hong_Kong),
    ("kl", Asia::Kuala_Lumpur),
    ("nz", Pacific::Auckland),
];

/// Cities (with common nicknames), countries with one dominant zone, and US
/// states that sit (almost) wholly in one zone. Keys are in [`normalise`]d form;
/// a test checks that.
const PLACES: &[(&str, Tz)] = &[
    // United States: cities.
    ("new york", America::New_York),
    ("new york city", America::New_York),
    ("nyc", America::New_York),
    ("manhattan", America::New_York),
    ("brooklyn", America::New_York),
    ("queens", America::New_York),
    ("bronx", America::New_York),
    ("boston", America::New_York),
    ("philadelphia", America::New_York),
    ("philly", America::New_York),
    ("pittsburgh", America::New_York),
    ("washington dc", America::New_York),
    ("washington d c", America::New_York),
    ("baltimore", America::New_York),
    ("atlanta", America::New_York),
    ("miami", America::New_York),
    ("orlando", America::New_York),
    ("tampa", America::New_York),
    ("jacksonville", America::New_York),
    ("charlotte", America::New_York),
    ("raleigh", America::New_York),
    ("richmond", America::New_York),
    ("columbus", America::New_York),
    ("cleveland", America::New_York),
    ("cincinnati", America::New_York),
    ("detroit", America::Detroit),
    ("indianapolis", America::Indiana::Indianapolis),
    ("louisville", America::Kentucky::Louisville),
    ("buffalo", America::New_York),
    ("newark", America::New_York),
    ("chicago", America::Chicago),
    ("houston", America::Chicago),
    ("dallas", America::Chicago),
    ("austin", America::Chicago),
    ("san antonio", America::Chicago),
    ("fort worth", America::Chicago),
    ("nashville", America::Chicago),
    ("memphis", America::Chicago),
    ("new orleans", America::Chicago),
    ("minneapolis", America::Chicago),
    ("st paul", America::Chicago),
    ("saint paul", America::Chicago),
    ("milwaukee", America::Chicago),
    ("kansas city", America::Chicago),
    ("st louis", America::Chicago),
    ("saint louis", America::Chicago),
    ("oklahoma city", America::Chicago),
    ("omaha", America::Chicago),
    ("denver", America::Denver),
    ("salt lake city", America::Denver),
    ("albuquerque", America::Denver),
    ("boise", America::Boise),
    ("el paso", America::Denver),
    ("phoenix", America::Phoenix),
    ("tucson", America::Phoenix),
    ("scottsdale", America::Phoenix),
    ("los angeles", America::Los_Angeles),
    ("hollywood", America::Los_Angeles),
    ("san francisco", America::Los_Angeles),
    ("bay area", America::Los_Angeles),
    ("oakland", America::Los_Angeles),
    ("san jose", America::Los_Angeles),
    ("san diego", America::Los_Angeles),
    ("sacramento", America::Los_Angeles),
    ("seattle", America::Los_Angeles),
    ("portland", America::Los_Angeles),
    ("las vegas", America::Los_Angeles),
    ("vegas", America::Los_Angeles),
    ("anchorage", America::Anchorage),
    // Smaller namesakes, when the writer says which one they mean.
    ("portland oregon", America::Los_Angeles),
    ("portland maine", America::New_York),
    ("birmingham alabama", America::Chicago),
    ("panama city florida", America::Chicago),
    ("london ontario", America::Toronto),
    ("kingston ontario", America::Toronto),
    ("perth scotland", Europe::London),
    ("san jose costa rica", America::Costa_Rica),
    ("honolulu", Pacific::Honolulu),
    // United States: states wholly or almost wholly in one zone.
    ("california", America::Los_Angeles),
    ("washington state", America::Los_Angeles),
    ("oregon", America::Los_Angeles),
    ("nevada", America::Los_Angeles),
    ("arizona", America::Phoenix),
    ("colorado", America::Denver),
    ("utah", America::Denver),
    ("new mexico", America::Denver),
    ("montana", America::Denver),
    ("wyoming", America::Denver),
    ("illinois", America::Chicago),
    ("minnesota", America::Chicago),
    ("wisconsin", America::Chicago),
    ("iowa", America::Chicago),
    ("missouri", America::Chicago),
    ("louisiana", America::Chicago),
    ("oklahoma", America::Chicago),
    ("arkansas", America::Chicago),
    ("alabama", America::Chicago),
    ("mississippi", America::Chicago),
    ("new york state", America::New_York),
    ("new jersey", America::New_York),
    ("pennsylvania", America::New_York),
    ("massachusetts", America::New_York),
    ("connecticut", America::New_York),
    ("ohio", America::New_York),
    ("virginia", America::New_York),
    ("north carolina", America::New_York),
    ("south carolina", America::New_York),
    ("maryland", America::New_York),
    ("hawaii", Pacific::Honolulu),
    ("alaska", America::Anchorage),
    // Canada.
    ("toronto", America::Toronto),
    ("ottawa", America::Toronto),
    ("montreal", America::Toronto),
    ("quebec city", America::Toronto),
    ("vancouver", America::Vancouver),
    ("victoria bc", America::Vancouver),
    ("calgary", America::Edmonton),
    ("edmonton", America::Edmonton),
    ("winnipeg", America::Winnipeg),
    ("regina", America::Regina),
    ("saskatoon", America::Regina),
    ("halifax", America::Halifax),
    ("st johns", America::St_Johns),
    // Mexico, Central America, Caribbean.
    ("mexico city", America::Mexico_City),
    ("cdmx", America::Mexico_City),
    ("guadalajara", America::Mexico_City),
    ("monterrey", America::Monterrey),
    ("cancun", America::Cancun),
    ("tijuana", America::Tijuana),
    ("guatemala city", America::Guatemala),
    ("san salvador", America::El_Salvador),
    ("panama city", America::Panama),
    ("panama", America::Panama),
    ("costa rica", America::Costa_Rica),
    ("havana", America::Havana),
    ("kingston", America::Jamaica),
    ("jamaica", America::Jamaica),
    ("santo domingo", America::Santo_Domingo),
    ("san juan", America::Puerto_Rico),
    ("puerto rico", America::Puerto_Rico),
    // South America.
    ("sao paulo", America::Sao_Paulo),
    ("rio de janeiro", America::Sao_Paulo),
    ("rio", America::Sao_Paulo),
    ("brasilia", America::Sao_Paulo),
    ("belo horizonte", America::Sao_Paulo),
    ("buenos aires", America::Argentina::Buenos_Aires),
    ("argentina", America::Argentina::Buenos_Aires),
    ("santiago", America::Santiago),
    ("chile", America::Santiago),
    ("lima", America::Lima),
    ("peru", America::Lima),
    ("bogota", America::Bogota),
    ("medellin", America::Bogota),
    ("colombia", America::Bogota),
    ("caracas", America::Caracas),
    ("venezuela", America::Caracas),
    ("quito", America::Guayaquil),
    ("montevideo", America::Montevideo),
    ("uruguay", America::Montevideo),
    ("la paz", America::La_Paz),
    ("asuncion", America::Asuncion),
    // British Isles.
    ("london", Europe::London),
    ("manchester", Europe::London),
    ("birmingham", Europe::London),
    ("liverpool", Europe::London),
    ("leeds", Europe::London),
    ("bristol", Europe::London),
    ("edinburgh", Europe::London),
    ("glasgow", Europe::London),
    ("cardiff", Europe::London),
    ("belfast", Europe::London),
    ("united kingdom", Europe::London),
    ("britain", Europe::London),
    ("great britain", Europe::London),
    ("england", Europe::London),
    ("scotland", Europe::London),
    ("wales", Europe::London),
    ("dublin", Europe::Dublin),
    ("cork", Europe::Dublin),
    ("ireland", Europe::Dublin),
    // Western and central Europe.
    ("paris", Europe::Paris),
    ("lyon", Europe::Paris),
    ("marseille", Europe::Paris),
    ("france", Europe::Paris),
    ("berlin", Europe::Berlin),
    ("munich", Europe::Berlin),
    ("munchen", Europe::Berlin),
    ("hamburg", Europe::Berlin),
    ("frankfurt", Europe::Berlin),
    ("cologne", Europe::Berlin),
    ("koln", Europe::Berlin),
    ("dusseldorf", Europe::Berlin),
    ("stuttgart", Europe::Berlin),
    ("germany", Europe::Berlin),
    ("amsterdam", Europe::Amsterdam),
    ("rotterdam", Europe::Amsterdam),
    ("hague", Europe::Amsterdam),
    ("netherlands", Europe::Amsterdam),
    ("holland", Europe::Amsterdam),
    ("brussels", Europe::Brussels),
    ("antwerp", Europe::Brussels),
    ("belgium", Europe::Brussels),
    ("luxembourg", Europe::Luxembourg),
    ("zurich", Europe::Zurich),
    ("geneva", Europe::Zurich),
    ("bern", Europe::Zurich),
    ("basel", Europe::Zurich),
    ("switzerland", Europe::Zurich),
    ("vienna", Europe::Vienna),
    ("wien", Europe::Vienna),
    ("austria", Europe::Vienna),
    ("madrid", Europe::Madrid),
    ("barcelona", Europe::Madrid),
    ("valencia", Europe::Madrid),
    ("seville", Europe::Madrid),
    ("spain", Europe::Madrid),
    ("lisbon", Europe::Lisbon),
    ("porto", Europe::Lisbon),
    ("portugal", Europe::Lisbon),
    ("rome", Europe::Rome),
    ("milan", Europe::Rome),
    ("naples", Europe::Rome),
    ("turin", Europe::Rome),
    ("florence", Europe::Rome),
    ("italy", Europe::Rome),
    ("copenhagen", Europe::Copenhagen),
    ("denmark", Europe::Copenhagen),
    ("oslo", Europe::Oslo),
    ("norway", Europe::Oslo),
    ("stockholm", Europe::Stockholm),
    ("gothenburg", Europe::Stockholm),
    ("malmo", Europe::Stockholm),
    ("sweden", Europe::Stockholm),
    ("helsinki", Europe::Helsinki),
    ("finland", Europe::Helsinki),
    ("reykjavik", Atlantic::Reykjavik),
    ("iceland", Atlantic::Reykjavik),
    ("prague", Europe::Prague),
    ("czechia", Europe::Prague),
    ("czech republic", Europe::Prague),
    ("warsaw", Europe::Warsaw),
    ("krakow", Europe::Warsaw),
    ("poland", Europe::Warsaw),
    ("budapest", Europe::Budapest),
    ("hungary", Europe::Budapest),
    ("bratislava", Europe::Bratislava),
    ("ljubljana", Europe::Ljubljana),
    ("zagreb", Europe::Zagreb),
    ("belgrade", Europe::Belgrade),
    ("malta", Europe::Malta),
    // Eastern Europe, Turkey, Caucasus.
    ("athens", Europe::Athens),
    ("greece", Europe::Athens),
    ("bucharest", Europe::Bucharest),
    ("romania", Europe::Bucharest),
    ("sofia", Europe::Sofia),
    ("bulgaria", Europe::Sofia),
    ("kyiv", Europe::Kyiv),
    ("kiev", Europe::Kyiv),
    ("ukraine", Europe::Kyiv),
    ("vilnius", Europe::Vilnius),
    ("riga", Europe::Riga),
    ("tallinn", Europe::Tallinn),
    ("minsk", Europe::Minsk),
    ("moscow", Europe::Moscow),
    ("st petersburg", Europe::Moscow),
    ("saint petersburg", Europe::Moscow),
    ("istanbul", Europe::Istanbul),
    ("ankara", Europe::Istanbul),
    ("turkey", Europe::Istanbul),
    ("tbilisi", Asia::Tbilisi),
    ("yerevan", Asia::Yerevan),
    ("baku", Asia::Baku),
    // Middle East.
    ("tel aviv", Asia::Jerusalem),
    ("jerusalem", Asia::Jerusalem),
    ("israel", Asia::Jerusalem),
    ("beirut", Asia::Beirut),
    ("amman", Asia::Amman),
    ("baghdad", Asia::Baghdad),
    ("tehran", Asia::Tehran),
    ("riyadh", Asia::Riyadh),
    ("jeddah", Asia::Riyadh),
    ("saudi arabia", Asia::Riyadh),
    ("dubai", Asia::Dubai),
    ("abu dhabi", Asia::Dubai),
    ("uae", Asia::Dubai),
    ("doha", Asia::Qatar),
    ("qatar", Asia::Qatar),
    ("kuwait", Asia::Kuwait),
    ("kuwait city", Asia::Kuwait),
    // South and central Asia.
    ("mumbai", Asia::Kolkata),
    ("bombay", Asia::Kolkata),
    ("delhi", Asia::Kolkata),
    ("new delhi", Asia::Kolkata),
    ("bangalore", Asia::Kolkata),
    ("bengaluru", Asia::Kolkata),
    ("chennai", Asia::Kolkata),
    ("hyderabad", Asia::Kolkata),
    ("kolkata", Asia::Kolkata),
    ("calcutta", Asia::Kolkata),
    ("pune", Asia::Kolkata),
    ("india", Asia::Kolkata),
    ("karachi", Asia::Karachi),
    ("lahore", Asia::Karachi),
    ("islamabad", Asia::Karachi),
    ("pakistan", Asia::Karachi),
    ("dhaka", Asia::Dhaka),
    ("bangladesh", Asia::Dhaka),
    ("kathmandu", Asia::Kathmandu),
    ("nepal", Asia::Kathmandu),
    ("colombo", Asia::Colombo),
    ("sri lanka", Asia::Colombo),
    ("tashkent", Asia::Tashkent),
    ("almaty", Asia::Almaty),
    // East and South-East Asia.
    ("tokyo", Asia::Tokyo),
    ("osaka", Asia::Tokyo),
    ("kyoto", Asia::Tokyo),
    ("japan", Asia::Tokyo),
    ("seoul", Asia::Seoul),
    ("busan", Asia::Seoul),
    ("south korea", Asia::Seoul),
    ("korea", Asia::Seoul),
    ("beijing", Asia::Shanghai),
    ("shanghai", Asia::Shanghai),
    ("shenzhen", Asia::Shanghai),
    ("guangzhou", Asia::Shanghai),
    ("chengdu", Asia::Shanghai),
    ("china", Asia::Shanghai),
    ("hong kong", Asia::Hong_Kong),
    ("taipei", Asia::Taipei),
    ("taiwan", Asia::Taipei),
    ("singapore", Asia::Singapore),
    ("kuala lumpur", Asia::Kuala_Lumpur),
    ("malaysia", Asia::Kuala_Lumpur),
    ("bangkok", Asia::Bangkok),
    ("thailand", Asia::Bangkok),
    ("jakarta", Asia::Jakarta),
    ("manila", Asia::Manila),
    ("philippines", Asia::Manila),
    ("hanoi", Asia::Bangkok),
    ("ho chi minh city", Asia::Ho_Chi_Minh),
    ("saigon", Asia::Ho_Chi_Minh),
    ("vietnam", Asia::Ho_Chi_Minh),
    ("yangon", Asia::Yangon),
    ("phnom penh", Asia::Phnom_Penh),
    // Africa.
    ("cairo", Africa::Cairo),
    ("egypt", Africa::Cairo),
    ("lagos", Africa::Lagos),
    ("abuja", Africa::Lagos),
    ("nigeria", Africa::Lagos),
    ("accra", Africa::Accra),
    ("ghana", Africa::Accra),
    ("nairobi", Africa::Nairobi),
    ("kenya", Africa::Nairobi),
    ("addis ababa", Africa::Addis_Ababa),
    ("ethiopia", Africa::Addis_Ababa),
    ("dar es salaam", Africa::Dar_es_Salaam),
    ("kampala", Africa::Kampala),
    ("kigali", Africa::Kigali),
    ("johannesburg", Africa::Johannesburg),
    ("joburg", Africa::Johannesburg),
    ("cape town", Africa::Johannesburg),
    ("durban", Africa::Johannesburg),
    ("pretoria", Africa::Johannesburg),
    ("south africa", Africa::Johannesburg),
    ("casablanca", Africa::Casablanca),
    ("morocco", Africa::Casablanca),
    ("algiers", Africa::Algiers),
    ("tunis", Africa::Tunis),
    ("dakar", Africa::Dakar),
    ("abidjan", Africa::Abidjan),
    ("kinshasa", Africa::Kinshasa),
    ("luanda", Africa::Luanda),
    ("harare", Africa::Harare),
    ("lusaka", Africa::Lusaka),
    ("maputo", Africa::Maputo),
    ("khartoum", Africa::Khartoum),
    // Oceania.
    ("sydney", Australia::Sydney),
    ("canberra", Australia::Sydney),
    ("melbourne", Australia::Melbourne),
    ("brisbane", Australia::Brisbane),
    ("gold coast", Australia::Brisbane),
    ("perth", Australia::Perth),
    ("adelaide", Australia::Adelaide),
    ("darwin", Australia::Darwin),
    ("hobart", Australia::Hobart),
    ("tasmania", Australia::Hobart),
    ("auckland", Pacific::Auckland),
    ("wellington", Pacific::Auckland),
    ("christchurch", Pacific::Auckland),
    ("new zealand", Pacific::Auckland),
    ("fiji", Pacific::Fiji),
    ("suva", Pacific::Fiji),
    ("guam", Pacific::Guam),
    ("maldives", Indian::Maldives),
    ("mauritius", Indian::Mauritius),
];

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::Tz;

    #[test]
    fn recognises_what_people_type() {
        let cases: &[(&str, Option<Tz>)] = &[
            // IANA names, any case, spaces for underscores.
            ("europe/paris", Some(Europe::Paris)),
            ("America/New_York", Some(America::New_York)),
            ("AMERICA/LOS_ANGELES", Some(America::Los_Angeles)),
            ("america/new york", Some(America::New_York)),
            ("my tz is Asia/Tokyo.", Some(Asia::Tokyo)),
            (
                "America/Argentina/Buenos_Aires",
                Some(America::Argentina::Buenos_Aires),
            ),
            // Abbreviations and zone names.
            ("EST", Some(America::New_York)),
            ("edt", Some(America::New_York)),
            ("Eastern", Some(America::New_York)),
            ("eastern time", Some(America::New_York)),
            ("Eastern Standard Time", Some(America::New_York)),
            ("CST", Some(America::Chicago)),
            ("central time zone", Some(America::Chicago)),
            ("MST", Some(America::Denver)),
            ("Mountain", Some(America::Denver)),
            ("PST", Some(America::Los_Angeles)),
            ("pdt", Some(America::Los_Angeles)),
            ("Pacific time", Some(America::Los_Angeles)),
            ("i'm on pacific time", Some(America::Los_Angeles)),
            ("UK", Some(Europe::London)),
            ("GMT", Some(Europe::London)),
            ("BST", Some(Europe::London)),
            ("CET", Some(Europe::Paris)),
            ("utc", Some(Tz::UTC)),
            ("AEST", Some(Australia::Sydney)),
            // Cities, as the whole answer or in a sentence.
            ("Paris", Some(Europe::Paris)),
            ("in Paris", Some(Europe::Paris)),
            ("I'm in Paris!", Some(Europe::Paris)),
            ("i live in berlin", Some(Europe::Berlin)),
            ("new york city", Some(America::New_York)),
            ("New York, NY", Some(America::New_York)),
            ("NYC", Some(America::New_York)),
            ("nyc!!", Some(America::New_York)),
            ("LA", Some(America::Los_Angeles)),
            ("L.A.", Some(America::Los_Angeles)),
            ("I'm in LA", Some(America::Los_Angeles)),
            ("SF", Some(America::Los_Angeles)),
            ("san francisco bay area", Some(America::Los_Angeles)),
            ("the Bay Area", Some(America::Los_Angeles)),
            ("The Hague", Some(Europe::Amsterdam)),
            ("near Boston, MA", Some(America::New_York)),
            ("São Paulo", Some(America::Sao_Paulo)),
            ("sao paulo, brazil", Some(America::Sao_Paulo)),
            ("Zürich", Some(Europe::Zurich)),
            ("Montréal", Some(America::Toronto)),
            ("St. Louis", Some(America::Chicago)),
            ("Washington, D.C.", Some(America::New_York)),
            ("mexico city", Some(America::Mexico_City)),
            ("Bengaluru", Some(Asia::Kolkata)),
            ("Hong Kong", Some(Asia::Hong_Kong)),
            ("currently based in Nairobi, Kenya", Some(Africa::Nairobi)),
            ("Melbourne, Australia", Some(Australia::Melbourne)),
            ("auckland nz", Some(Pacific::Auckland)),
            ("we just moved to Denver last year", Some(America::Denver)),
            ("I'm in central London", Some(Europe::London)),
            ("London, Ontario", Some(America::Toronto)),
            ("Portland, Maine", Some(America::New_York)),
            ("I'm in the UK", Some(Europe::London)),
            ("Arizona", Some(America::Phoenix)),
            ("Ireland", Some(Europe::Dublin)),
            // Not places, or not one zone: ask again rather than guess.
            ("banana", None),
            ("", None),
            ("   ", None),
            ("?!", None),
            ("I'm in", None),
            ("usa", None),
            ("Australia", None),
            ("Canada", None),
            ("Brazil", None),
            ("eastern europe", None),
            ("IST", None),
            ("UTC+2", None),
            ("la la land", None),
            ("remind me to call mom", None),
            ("Europe/Atlantis", None),
        ];
        let failures: Vec<String> = cases
            .iter()
            .filter_map(|&(text, expected)| {
                let got = timezone_from_text(text);
                (got != expected).then(|| format!("{text:?}: expected {expected:?}, got {got:?}"))
            })
            .collect();
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn every_iana_name_round_trips_in_any_case() {
        for tz in chrono_tz::TZ_VARIANTS
            .iter()
            .filter(|tz| tz.name().contains('/'))
        {
            assert_eq!(timezone_from_text(&tz.name().to_lowercase()), Some(*tz));
            assert_eq!(timezone_from_text(&tz.name().to_uppercase()), Some(*tz));
        }
    }

    #[test]
    fn table_keys_are_normalised_and_unique() {
        let mut seen = std::collections::HashSet::new();
        for table in [ZONE_NAMES, WHOLE_ANSWER_ONLY, PLACES] {
            for (key, _) in table {
                assert_eq!(
                    normalise(key),
                    *key,
                    "key {key:?} is not in normalised form"
                );
                assert!(seen.insert(*key), "key {key:?} appears twice");
            }
        }
    }

    #[test]
    fn whole_answer_keys_survive_filler_stripping() {
        // These tables are only consulted for the stripped whole answer, so a
        // key that loses a word to stripping could never match.
        for (key, _) in ZONE_NAMES.iter().chain(WHOLE_ANSWER_ONLY) {
            let words: Vec<&str> = key.split(' ').collect();
            assert_eq!(strip_filler(&words).join(" "), *key);
        }
    }

    #[test]
    fn table_is_big_enough_to_be_useful() {
        assert!(PLACES.len() >= 150, "{}", PLACES.len());
    }
}
