//! Property tests of button data (`callback_data`): it comes back from Telegram as
//! any client chooses to send it, so parsing answers a press or nothing, never a
//! panic. `PROPTEST_CASES` overrides the number of cases (256 by default).

use super::{Press, parse_press};

/// `parse_press` of an owned string, compared as text (the press borrows the data).
fn parsed(data: String) -> String {
    format!("{:?}", parse_press(&data))
}
use proptest::prelude::*;

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(256)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn any_data_parses_to_a_press_or_nothing(data in prop_oneof![
        any::<String>(),
        "(link|cancel|w|wy|cf|nw|lang|u|rqn|rqc|rq|sv)(:[^:]{0,12}){0,4}",
    ]) {
        if let Some(press) = parse_press(&data) {
            // Whatever is accepted is made of the data's own text and small numbers.
            match press {
                Press::AskWithdraw(menu, _) | Press::Withdraw(menu, _) | Press::Confirm(menu, _) | Press::Unlink(menu, _) => {
                    prop_assert!(data.contains(menu));
                }
                Press::RequestCompany(menu, n) | Press::RequestFile(menu, n, _) => {
                    prop_assert!(data.contains(menu));
                    prop_assert!(n < 1000);
                }
                Press::Score(id, score) => {
                    prop_assert!(assent_core::id::is_id(id));
                    prop_assert!((0..=10).contains(&score));
                }
                Press::Link(rest) | Press::FromNotice(rest) => prop_assert!(!rest.is_empty()),
                Press::Language(l) => prop_assert!(l == "ru" || l == "en"),
                Press::Cancel | Press::RequestStart => {}
            }
        }
    }

    #[test]
    fn menu_buttons_round_trip(menu in "[0-9a-f]{1,16}", n in 0usize..1000) {
        prop_assert_eq!(parsed(format!("w:{menu}:{n}")), format!("{:?}", Some(Press::AskWithdraw(&menu, n))));
        prop_assert_eq!(parsed(format!("wy:{menu}:{n}")), format!("{:?}", Some(Press::Withdraw(&menu, n))));
        prop_assert_eq!(parsed(format!("cf:{menu}:{n}")), format!("{:?}", Some(Press::Confirm(&menu, n))));
        prop_assert_eq!(parsed(format!("u:{menu}:{n}")), format!("{:?}", Some(Press::Unlink(&menu, n))));
        // Request menus are named `r…`.
        let request_menu = format!("r{menu}");
        prop_assert_eq!(parsed(format!("rqc:{request_menu}:{n}")), format!("{:?}", Some(Press::RequestCompany(&request_menu, n))));
    }

    #[test]
    fn numbers_are_plain_digits(menu in "[0-9a-f]{1,8}", n in "[+ -][0-9]{1,3}|[0-9]{1,3}[ x]|[0-9]{4,30}", huge in "[1-9][0-9]{20,29}") {
        prop_assert_eq!(parsed(format!("rqc:r{menu}:{n}")), "None");
        // Beyond usize: refused, not wrapped.
        prop_assert_eq!(parsed(format!("w:{menu}:{huge}")), "None");
        prop_assert_eq!(parsed(format!("rq:r{menu}:{huge}:access")), "None");
    }

    #[test]
    fn scores_outside_0_to_10_are_refused(score in prop_oneof![i64::MIN..0, 11..i64::MAX]) {
        let id = assent_core::id::new_id();
        prop_assert_eq!(parsed(format!("sv:{id}:{score}")), "None");
    }
}
