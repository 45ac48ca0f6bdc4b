/* token.c: the byte-level tokenizer and the built-in benchmark prompt. */
#include "tinyllm.h"

/*
 * The text benchmark prompts are cut from. It is repeated when a request
 * asks for more tokens than it holds.
 */
static const char prompt_text[] =
    "The lighthouse keeper climbed the spiral stairs at dusk, as he had "
    "done every evening for thirty years. Below him the harbour filled "
    "with fishing boats returning from the grey water, their engines "
    "coughing and their decks heavy with nets. He trimmed the wick, "
    "polished the great lens until it shone, and wrote the weather in "
    "his log: wind from the west, a falling glass, rain before midnight. "
    "Then he sat by the window with a mug of tea and watched the beam "
    "sweep across the waves, counting the seconds between each flash "
    "the way his father had taught him. ";

/*
 * Builds the deterministic prompt of n tokens (n >= 1): the BOS token
 * followed by the first n - 1 bytes of the prompt text. Returns n.
 */
int
token_prompt(int *out, int n)
{
	size_t len = sizeof(prompt_text) - 1;
	int i;

	out[0] = TOKEN_BOS;
	for (i = 1; i < n; i++)
		out[i] = (unsigned char)prompt_text[(size_t)(i - 1) % len];
	return n;
}

/*
 * Encodes len bytes of text as the BOS token followed by one token per
 * byte. Returns the number of tokens, or -1 if they would not fit in max.
 */
int
token_encode(int *out, int max, const char *text, size_t len)
{
	size_t i;

	if (len + 1 > (size_t)max)
		return -1;
	out[0] = TOKEN_BOS;
	for (i = 0; i < len; i++)
		out[i + 1] = (unsigned char)text[i];
	return (int)len + 1;
}
