// Package glob matches the wildcard patterns AWS uses in IAM policies and
// EC2 filters: * stands for any run of characters, ? for one character,
// every other character for itself.
package glob

// Match reports whether s matches pattern. It backtracks only to the last
// *, so it runs in O(len(pattern)·len(s)) at worst, whatever a hostile
// pattern holds.
func Match(pattern, s string) bool {
	p, r := []rune(pattern), []rune(s)
	pi, si, star, mark := 0, 0, -1, 0
	for si < len(r) {
		switch {
		case pi < len(p) && (p[pi] == '?' || p[pi] == r[si]):
			pi++
			si++
		case pi < len(p) && p[pi] == '*':
			star, mark = pi, si
			pi++
		case star >= 0:
			pi, mark = star+1, mark+1
			si = mark
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}
