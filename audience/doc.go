// Package audience compiles and evaluates audience definitions: named,
// boolean conditions on a profile that Kith re-evaluates in real time
// whenever something the condition reads changes. A member of an audience
// carries a computed boolean trait of the audience's name, and entering or
// leaving it is an event for activation.
//
// Marketers' tools generate definitions and power users write them; the
// condition language is CEL (https://cel.dev), safe (no loops, no I/O,
// bounded cost) and type-checked when the definition is saved, with errors
// that give the line and column of the mistake and name what is allowed.
//
// # Definitions
//
// A definition, as JSON (YAML in the config file uses the same names):
//
//	{
//	  "name": "vip",                          // ^[a-z][a-z0-9_]{0,63}$, also the trait set on members
//	  "entity": "user",                       // "user" (default) or "account"
//	  "condition": "computed.order_count >= 3 && traits.plan == \"pro\"",
//	  "description": "Pro customers with 3+ orders",
//	  "suppression": false,                   // this audience is a suppression list
//	  "suppress_all": false,                  // (suppression lists) members are excluded from every audience and from all activation
//	  "respect_suppressions": true            // members of any suppression list are excluded from this audience
//	}
//
// Parse reads one; Compile compiles all of a workspace's audiences
// together, because they may read each other.
//
// # The condition language
//
// A condition is a CEL expression of type bool over these variables:
//
//	traits     the profile's traits (JSON values)
//	computed   the profile's computed traits, by name
//	audiences  the audiences the profile is a member of
//	events     the profile's event history, through functions (below)
//	now        the time of evaluation (a timestamp)
//	accounts   (user audiences) the user's accounts
//	users      (account audiences) the account's users
//
// Traits are read by key, with a literal key, so that Kith knows what an
// audience reads and re-evaluates it only when that changes:
//
//	traits.plan == "pro"
//	traits["first name"] == "Ada"          // keys that are not identifiers
//	has(traits.plan)                       // the trait is set ("plan" in traits is the same)
//	traits.age >= 18                       // numbers compare across int and double
//	traits.address.city == "Paris"         // objects
//	"red" in traits.colors                 // lists
//	traits.email.endsWith("@example.com")  // CEL's string functions
//	timestamp(traits.signed_up_at) < now - days(30)
//
// A trait the profile does not have, or has with another type than the
// condition expects, makes the comparison that reads it false (CEL's &&
// and || still decide when the other side does: traits.missing == 1 ||
// true is true). has() tests for presence explicitly.
//
// Computed traits (package trait) are read the same way, by a name that
// must be a computed trait of the audience's entity (else the error
// unknown_trait, or wrong_entity for one of the other entity):
//
//	computed.order_count >= 3
//	computed.lifetime_value > 1000.0
//
// Membership of other audiences of the same entity, with the name as a
// string literal (else unknown_audience or not_literal); an audience that
// reads others is evaluated after them, and audiences cannot read each
// other in a cycle (cycle):
//
//	"vip" in audiences
//	!("churned" in audiences)
//
// Event conditions count the profile's events. Their arguments must be
// literals (not_literal otherwise), because each becomes an implicit
// computed trait (a counter in package trait, kind count or funnel,
// matching track events, pages and screens of that name) that Kith keeps
// up to date as events arrive; nothing queries raw events at evaluation:
//
//	events.count("Order Completed") >= 3                 // at least 3, ever
//	events.count("Order Completed", 30) == 0             // none in the last 30 days (UTC days, today included)
//	events.count("Order Completed", 30, "properties.total > 100") <= 2   // at most 2 big orders
//	events.count("Order Completed", 0, "properties.total > 100") >= 1    // a big order, ever (0 days: all time)
//	events.performed("App Opened", 7)                    // at least once in 7 days (count > 0)
//	events.then("Product Viewed", "Order Completed", "1h")      // a view followed by an order within 1h, ever
//	events.then("Product Viewed", "Order Completed", "7d", 30)  // ... completed in the last 30 days
//
// The third argument of count and performed is a filter: a CEL condition
// over the event, with the variables type, event, properties, context,
// traits and timestamp (see package trait); its errors are reported at
// their position inside the string literal. The time limit of then is a
// Go duration ("90m", "1h") or days ("7d"). Windows are 1 to 3650 days.
// events.count(...) is an int, performed and then are bools; "at least",
// "at most" and "exactly" N times are comparisons of count.
//
// Time: now is a timestamp; days(n) and hours(n) are durations (n an int
// or a double). An audience that reads now is re-evaluated as time passes
// (Reads.Now).
//
//	timestamp(traits.trial_ends_at) - now < days(3)
//	now.getDayOfWeek() == 1
//
// Accounts and users: a user audience reads the user's accounts, an
// account audience its users, through CEL's macros. Each element has
// traits, computed (of its own entity) and audiences (of its own entity):
//
//	accounts.exists(a, a.traits.plan == "enterprise")     // user audience
//	accounts.exists(a, "key_accounts" in a.audiences)
//	users.exists(u, u.computed.order_count > 0)           // account audience: some user
//	users.all(u, has(u.traits.email))                     // every user
//	!users.exists(u, "churned" in u.audiences)            // no user
//	size(users) >= 10
//
// users in a user audience, or accounts in an account audience, is the
// error wrong_entity.
//
// # Suppression lists
//
// A suppression list is an audience with suppression set; suppression
// lists are decided before every other audience and may read only other
// suppression lists. Members of a suppression list with suppress_all are
// not members of any other audience of that entity (and must not be
// activated: the engine checks Definition().SuppressAll). Members of any
// suppression list of the entity are excluded from an audience with
// respect_suppressions. Either way the suppression lists appear in the
// audience's Reads().Audiences, and Eval applies them.
//
// # Errors
//
// Compile reports every problem it finds as an Errors of *Error, each with
// the audience, the field, a 1-based line and column within the field's
// text (counting characters), a stable Code and a message. Codes: json,
// invalid, duplicate, too_long, syntax, type, unknown_audience,
// unknown_trait, unknown_variable, unknown_field, unsupported, not_literal,
// wrong_entity, event, cycle, suppression.
//
// # Limits
//
// A condition has at most MaxConditionLen bytes, a bounded syntax nesting
// and at most 3 macros (exists, all, map, ...) inside each other; an
// evaluation costs at most CostLimit (CEL cost units, about one per
// operation or element visited) and fails past it.
//
// # Evaluation
//
// The engine evaluates Set.Audiences() in order for a profile, giving each
// the memberships already decided in Profile.Audiences, the values of the
// implicit counters (Set.Conditions, by Key) in Profile.Conditions, and
// related profiles with their traits, computed traits and memberships.
// Audience.Eval is safe for concurrent use. Reads tells which changes
// require re-evaluating an audience.
package audience
