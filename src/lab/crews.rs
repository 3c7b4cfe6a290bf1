//! The demo's maintenance organisation: per district a team (维修班) with a lead who dispatches
//! and two crew members on call around the clock (one for pumps and electrics, one for water
//! quality and networks), and a city manager at the top of every escalation ladder. Their
//! logins are created with one demo password (`cistern demo` prints them), so that a visitor
//! can open the crew page on a phone as one of them.

use crate::auth::{IdentityError, Role, Security};
use crate::business::workorders::teams::{Day, Member, Shift, Team};
use cistern_schemas::inventory::Inventory;

/// Every demo crew login's password.
pub const CREW_PASSWORD: &str = "crew-demo-2026";
/// The manager every escalation ends with.
pub const MANAGER: &str = "manager";

const ALL_DAYS: [Day; 8] = [
    Day::Mon,
    Day::Tue,
    Day::Wed,
    Day::Thu,
    Day::Fri,
    Day::Sat,
    Day::Sun,
    Day::Holiday,
];

fn skills(s: &[&str]) -> Vec<String> {
    s.iter().map(|x| (*x).to_owned()).collect()
}

/// A team per zone of `inventory`.
pub fn teams(inventory: &Inventory) -> Vec<Team> {
    inventory
        .zones
        .iter()
        .map(|z| {
            let id = z.id.as_str();
            let crew = [format!("crew-{id}-1"), format!("crew-{id}-2")];
            Team {
                id: id.to_owned(),
                name: format!("{}维修班", z.name),
                name_en: format!("{} crew", z.name_pinyin),
                zones: vec![z.id.clone()],
                lead: format!("lead-{id}"),
                manager: MANAGER.to_owned(),
                members: vec![
                    Member {
                        user: crew[0].clone(),
                        skills: skills(&["electrical", "mechanical"]),
                    },
                    Member {
                        user: crew[1].clone(),
                        skills: skills(&["water_quality", "network", "mechanical"]),
                    },
                ],
                // From 00:00 to 00:00: all day.
                on_call: vec![Shift {
                    days: ALL_DAYS.to_vec(),
                    from: "00:00".into(),
                    to: "00:00".into(),
                    users: crew.to_vec(),
                }],
            }
        })
        .collect()
}

/// Creates the logins of `teams` (leads and the manager dispatch: operators; crews: viewers
/// who work their own orders) unless they exist. Returns the crew members' names.
pub async fn create_logins(
    security: &Security,
    teams: &[Team],
) -> Result<Vec<String>, IdentityError> {
    let mut logins = vec![(MANAGER.to_owned(), Role::Operator)];
    let mut crews = Vec::new();
    for t in teams {
        logins.push((t.lead.clone(), Role::Operator));
        for m in &t.members {
            logins.push((m.user.clone(), Role::Viewer));
            crews.push(m.user.clone());
        }
    }
    for (name, role) in logins {
        match security.auth.create_user(&name, role, CREW_PASSWORD).await {
            Ok(_) | Err(IdentityError::UserExists { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(crews)
}
