package caddywsgi

// suggest returns the candidate closest to word, a misspelling of it, for a
// "did you mean" in an error message; "" if none is close enough to be a
// likely typo. Ties go to the earlier candidate.
func suggest(word string, candidates []string) string {
	// A third of the word's length, at least one: "thread" finds "threads"
	// and "proceses" "processes", while short words do not match anything.
	limit := max(1, len(word)/3)
	best, bestDist := "", limit+1
	for _, c := range candidates {
		if d := editDistance(word, c); d < bestDist {
			best, bestDist = c, d
		}
	}
	return best
}

// editDistance is the optimal string alignment distance between a and b:
// how many insertions, deletions, substitutions and swaps of adjacent bytes
// make one the other. A swap counts once, since it is the commonest typo.
func editDistance(a, b string) int {
	// d[i][j] is the distance between a[:i] and b[:j].
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}
