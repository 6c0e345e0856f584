// Package trait computes traits of profiles from the events they perform —
// counts, sums, averages, extremes, first and last values, most frequent
// and distinct values, and funnels — maintained incrementally while the
// processor folds the log, never by scanning events again.
//
// A Definition (from the config file or the admin API) is checked by
// Validate and compiled by Compile into a Trait. For each profile the
// engine keeps one State per Trait: it folds events in with Observe,
// combines two profiles' states with Merge (a profile merge, or an
// account's users), reads the trait with Value, drops what time has made
// useless with Expire, and persists the state with Encode and Decode under
// the Trait's Key.
//
// # Buckets and windows
//
// A State holds partial results in buckets. An all-time trait (WindowDays
// 0) has a single bucket. A windowed trait has one bucket per UTC day of
// the events' (corrected) timestamps; its value at a time now combines the
// buckets of the last WindowDays days, today included, so the value moves
// with time even when no event arrives: Value(s, later) leaves out days
// that have left the window, and Expire drops those buckets and tells when
// the next one leaves (the start of a UTC day), for the engine to schedule
// a re-evaluation. Buckets of days after now are counted.
//
// Each kind keeps what combining needs: count a number of events; sum and
// avg a number of events and an exact sum (in units of 1e-9, in 128 bits,
// so that adding is exact and the result cannot depend on the order of
// events); min and max one number; first and last one value with its
// timestamp and log position; most_frequent, unique_list and unique_count
// sorted distinct values (with their counts for most_frequent).
//
// Values are JSON: count, unique_count and funnel an integer (0 when
// nothing was observed); sum an exact decimal; avg, min and max a number;
// first and last the value of the event with the smallest / largest
// (timestamp, position); most_frequent the value seen most often, ties
// going to the smallest; unique_list a sorted array. Kinds other than
// count, unique_count and funnel have no value (nil) when nothing was
// observed in the window. Scalars sort false < true < numbers < strings
// (bytewise); numbers are compared by value, so 1 and 1.0 are the same.
//
// # Order
//
// Observe in any order and Merge in any grouping give the same Value: each
// bucket is a commutative, associative summary of its events. Funnels are
// the exception: their steps are taken in log order. A State keeps, per
// step but the last, the latest start time of a chain that reached it. An
// event of step k advances the chain that reached step k−1 when its
// timestamp is not before that chain's start and at most Within after it;
// an event of the last step completes it, is counted on the UTC day of
// that event, and consumes the chain. Merge takes the latest start of each
// step and adds completions.
//
// # Caps
//
// Memory is bounded by caps that keep results independent of order:
//
//   - a bucket keeps at most 1,000 distinct values (most_frequent,
//     unique_list, unique_count): the 1,000 smallest, with exact counts;
//     the union over a window is cut to its 1,000 smallest too, so
//     unique_count reports at most 1,000 and unique_list lists at most
//     1,000 values; most_frequent's counts are exact while a day has at
//     most 1,000 distinct values;
//   - string values longer than 1,024 bytes are not observed;
//   - sum and avg observe numbers up to 1e18 in magnitude, resolved to
//     1e-9; a sum saturates at about ±1.7e29;
//   - a windowed trait keeps at most one bucket per day: at most
//     WindowDays (≤ 3,650) after Expire;
//   - Where is at most 4,096 bytes and its evaluation is limited by
//     cel.CostLimit(10,000); a condition over that limit does not match.
//
// # Where
//
// Where is a CEL expression (https://cel.dev) of type bool over these
// variables:
//
//	type        string               track, page, screen, identify or group
//	event       string               a track event's name, a page's or screen's name
//	properties  map(string, dyn)     the event's properties
//	context     map(string, dyn)     the event's context
//	traits      map(string, dyn)     the event's traits (identify, group), else context.traits
//	timestamp   timestamp            the corrected event time
//
// for example `properties.total > 100 && context.campaign.name == "spring"`.
// The extended string functions (ext.Strings) are available; numbers of
// different types compare with each other. Reading a missing key is an
// evaluation error, and an evaluation error means no match: use
// has(properties.coupon) to test presence.
//
// # Events
//
// An Event wraps a store.Event for every Trait that looks at it. Type and
// name are checked first, from the store.Event's fields; the JSON is
// scanned for a property path only when a trait needs it (its top-level
// fields are indexed once, a path is resolved once), and properties,
// context and traits are decoded into maps only when a Where condition
// reads them.
package trait
