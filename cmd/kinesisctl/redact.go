package main

import "strings"

// redacted replaces the password of a URL's user information.
const redacted = "xxxxx"

// wordBreaks end the words redact looks at: spaces and quotes.
const wordBreaks = " \t\n\"'<>`"

// redact hides the passwords of URLs in msg: in every word (a run of
// characters without spaces or quotes) holding user information, such as
// http://user:password@host/, what lies between the first colon after the
// scheme and the last "@" becomes xxxxx. It works on URLs that do not parse
// and on words without a scheme (user:password@host), since an endpoint
// given wrongly is quoted in messages as it was given.
func redact(msg string) string {
	var b strings.Builder
	start := 0
	for i := 0; i < len(msg); i++ {
		if strings.IndexByte(wordBreaks, msg[i]) >= 0 {
			b.WriteString(redactWord(msg[start:i]))
			b.WriteByte(msg[i])
			start = i + 1
		}
	}
	b.WriteString(redactWord(msg[start:]))
	return b.String()
}

func redactWord(w string) string {
	at := strings.LastIndexByte(w, '@')
	if at < 0 {
		return w
	}
	start := 0
	if i := strings.Index(w, "://"); i >= 0 && i < at && isScheme(w[:i]) {
		start = i + len("://")
	}
	colon := strings.IndexByte(w[start:at], ':')
	if colon < 0 {
		return w
	}
	return w[:start+colon+1] + redacted + w[at:]
}

// isScheme reports whether s can be a URL's scheme: a letter, then letters,
// digits, "+", "-" or ".". Otherwise a "://" belongs to the password.
func isScheme(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case i > 0 && ('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.'):
		default:
			return false
		}
	}
	return s != ""
}
