// Package maincf reads Postfix's main.cf the way Postfix does (src/global/mail_conf.c,
// src/util/dict.c dict_load_fp, readlline.c, split_nameval.c, mac_parse.c, mac_expand.c),
// so that vdeliver sees the same parameter values as virtual(8) on the same machine.
//
// # Logical lines
//
// The file is read as physical lines separated by "\n"; a "\r" before it is kept and
// later trimmed as trailing whitespace. Whitespace means the C isspace set
// (space, \t, \n, \v, \f, \r).
//
//   - A line that is empty, all whitespace, or whose first non-whitespace character is
//     "#" is dropped. It does not end the logical line being built, so a comment or a
//     blank line may sit between a line and its continuation. A "#" anywhere else is
//     text, not a comment.
//   - A line that starts with whitespace continues the previous logical line. The pieces
//     are joined without the newline and with the continuation's leading whitespace kept:
//     "a = b," followed by "   c" gives the value "b,   c".
//   - A continuation with no preceding text is dropped with the warning "logical line
//     must not start with whitespace".
//   - Any other line starts a new logical line. Warnings and errors name the file and the
//     first physical line of the logical line.
//   - Postfix handles a logical line as a C string, so text after a NUL byte is ignored,
//     with the warning "text after null byte may be ignored".
//
// # Parameters
//
// A logical line is "name = value". The name is the text up to the first whitespace or
// "="; whitespace around "=" and at the end of the value is dropped; the value may be
// empty. A line with no name gives the error "missing attribute name", a name not
// followed by "=" the error "missing '=' after attribute name"; both are fatal in Postfix
// and are returned as an [*Error] wrapping [ErrSyntax], formatted "FILE:LINE: reason:
// text", whose File and Line fields give the position.
//
// When a name appears twice the later value wins; if the values differ this is recorded
// as the warning "overriding earlier entry: name=old value", at the later line, exactly
// as Postfix logs it. Order is otherwise irrelevant: values are stored raw and expanded
// only when used, so a parameter may refer to one defined further down.
//
// # Expansion
//
// [Config.Get] and [Config.Expand] expand macros recursively, as Postfix daemons do:
//
//	$name, ${name}, $(name)      the value of name, itself expanded; empty if undefined
//	$$                           a literal "$" (only one level: the "$" is not re-read)
//	${name?text}, ${name?{text}} text (expanded) if name's value is non-empty, else empty
//	${name:text}, ${name:{text}} text (expanded) if name's value is empty or undefined
//	${name?{t1}:{t2}}            t1 if name's value is non-empty, else t2; "{}" optional
//	                             on t2 ("${name?{t1}:t2}")
//	${{a} op {b}}                "true" or "" after expanding a and b and comparing them
//	${{a} op {b} ? {t1} : {t2}}  t1 or t2 by that comparison; "?" or ":" alone also work
//
// A name is made of [A-Za-z0-9_]; $name takes the longest such run. Inside "${" the text
// up to the matching "}" (counting nested "{" "}", or "(" ")" for "$(") is the
// expression; whitespace is allowed before and after the name and around each {text},
// but not inside the braces, which are taken literally. Without braces the text after
// "?" or ":" runs to the end of the expression, ":" included, as in Postfix 2.11:
// "${name?a:b}" gives "a:b".
//
// The operators are == != < <= >= >. When both sides are non-empty strings of decimal
// digits they are compared as numbers (an overflowing number is an error, as Postfix's
// "bad conversion"); otherwise as byte strings. The same operators followed by "level"
// (<level, <=level, ...) compare Postfix compatibility levels: "major[.minor[.patch]]"
// with missing parts taken as 0, so "3.6" <level "3.10" and "1" ==level "1.0".
//
// A parameter is defined when main.cf sets it, when [Config.Override] or [Config.Set]
// sets it, or when it has a built-in default (see below). Undefined names expand to
// the empty string without error, as in Postfix (postconf only warns).
//
// Errors, each wrapping [ErrSyntax] and carrying Postfix's wording: "empty macro name"
// ("$" followed by nothing usable, "${}"), "truncated macro reference" (an unclosed "${"
// or "$("), "attribute name syntax error", "unbalanced {} in attribute expression",
// operator and operand errors, trailing text after a {text} ("unexpected input",
// "\":\" expected"), and "unreasonable macro call nesting" when references nest more than
// 100 deep, which is how a loop such as "a = $b" with "b = $a" ends. Postfix restarts
// that count inside comparison operands (and can then recurse without bound); here the
// count carries through them. Also unlike Postfix, one expansion stops with an error
// after 100000 references, so a doubling chain ("a1 = $a2$a2", "a2 = $a3$a3", ...)
// cannot run for ever.
//
// # Defaults
//
// Parameters vdeliver uses have Postfix's built-in defaults (checked against
// "postconf -d" of Postfix 3.7): they are returned by [Config.Raw] and [Config.Get] and
// count as defined for expansion, so an unset virtual_mailbox_domains is the value of
// virtual_mailbox_maps. Three defaults are computed as Postfix computes them:
//
//   - myhostname: the host name (os.Hostname); if it has no dot, Postfix appends "." and
//     mydomain when main.cf sets mydomain, else ".localdomain".
//   - mydomain: myhostname without its first label; "localdomain" when myhostname has
//     no dot.
//   - config_directory: the directory given to [Load] ("/etc/postfix" after [Parse]).
//
// smtputf8_enable keeps Postfix's default expression, which depends on
// compatibility_level (default 0): it is "no" until compatibility_level is 1 or more.
//
// # Typed values
//
// [Config.Int] accepts a decimal integer, [Config.Bool] "yes" or "no" in any case (Postfix
// rejects everything else, "true" included), and [Config.Duration] Postfix's time syntax:
// a non-negative decimal number and an optional unit s, m, h, d or w; without a unit the
// parameter's default unit applies (d for maximal_queue_lifetime and
// bounce_queue_lifetime, h for delay_warning_time, s otherwise), and the result must fit
// Postfix's int seconds. Each error names the parameter and its value and wraps
// [ErrSyntax].
//
// # Concurrency
//
// A Config holds no global state. Reading methods may be called concurrently; Set and
// Override must not run at the same time as any other method.
package maincf
