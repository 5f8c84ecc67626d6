package caddywsgi

// suggest is the candidate closest to word, a likely misspelling of it, or
// "" if none is close: at most one edit in four letters away.
func suggest(word string, candidates []string) string {
	best, bestDistance := "", max(1, len([]rune(word))/4)+1
	for _, candidate := range candidates {
		if d := editDistance(word, candidate); d < bestDistance {
			best, bestDistance = candidate, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b: the fewest
// insertions, deletions and substitutions of one letter that turn a into b.
func editDistance(a, b string) int {
	s, t := []rune(a), []rune(b)
	row := make([]int, len(t)+1)
	for j := range row {
		row[j] = j
	}
	for i := 1; i <= len(s); i++ {
		diagonal := row[0]
		row[0] = i
		for j := 1; j <= len(t); j++ {
			substitution := diagonal
			if s[i-1] != t[j-1] {
				substitution++
			}
			diagonal = row[j]
			row[j] = min(row[j]+1, row[j-1]+1, substitution)
		}
	}
	return row[len(t)]
}
