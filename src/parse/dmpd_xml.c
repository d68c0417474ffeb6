/* A small strict XML scanner, enough for the tools' output: elements with
 * double-quoted attributes, whitespace between tags, nothing else (no text
 * content, comments, declarations, CDATA). Names are lower-case
 * [a-z_][a-z0-9_]* since they become keys. Attribute values are printable
 * ASCII after decoding the five predefined entities and &#N;/&#xN;
 * references. */
#include "dmpd_internal.h"

#include <stdio.h>
#include <string.h>

int dmpd_xfail(struct xml *x, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = dmpd_vfail(x->why, x->whylen, x->tool, x->line, fmt, ap);
	va_end(ap);
	return r;
}

static bool xml_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Skips whitespace; true when there was some. */
static bool xml_skip_space(struct xml *x)
{
	const char *start = x->p;
	for (; x->p < x->end && xml_space(*x->p); x->p++)
		if (*x->p == '\n')
			x->line++;
	return x->p != start;
}

/* A printable description of the byte at p for error messages. */
static const char *xml_what(const struct xml *x, char *buf, size_t len)
{
	if (x->p >= x->end)
		return "end of input";
	unsigned char c = (unsigned char)*x->p;
	if (c > 0x20 && c < 0x7f)
		snprintf(buf, len, "'%c'", c);
	else
		snprintf(buf, len, "byte 0x%02x", c);
	return buf;
}

static int xml_name(struct xml *x, char *out, const char *what)
{
	size_t n = 0;
	for (; x->p < x->end; x->p++, n++) {
		char c = *x->p;
		if (!((c >= 'a' && c <= 'z') || c == '_' || (n && c >= '0' && c <= '9')))
			break;
		if (n == XML_NAME_MAX)
			return dmpd_xfail(x, "%s name longer than %d bytes", what, XML_NAME_MAX);
		out[n] = c;
	}
	out[n] = '\0';
	if (!n) {
		char b[16];
		return dmpd_xfail(x, "expected %s name, found %s", what, xml_what(x, b, sizeof(b)));
	}
	return 0;
}

/* Decodes the entity at x->p (just after '&') into *c. */
static int xml_entity(struct xml *x, char *c)
{
	static const struct {
		const char *name;
		char c;
	} named[] = {
		{ "amp;", '&' }, { "lt;", '<' }, { "gt;", '>' }, { "quot;", '"' }, { "apos;", '\'' },
	};
	size_t left = (size_t)(x->end - x->p);
	for (size_t i = 0; i < sizeof(named) / sizeof(named[0]); i++) {
		size_t n = strlen(named[i].name);
		if (left >= n && memcmp(x->p, named[i].name, n) == 0) {
			x->p += n;
			*c = named[i].c;
			return 0;
		}
	}
	if (left && *x->p == '#') {
		bool hex = left > 1 && x->p[1] == 'x';
		const char *q = x->p + (hex ? 2 : 1);
		unsigned v = 0, digits = 0;
		for (; q < x->end && *q != ';' && digits < 8; q++, digits++) {
			int d = *q >= '0' && *q <= '9'		   ? *q - '0'
				: hex && *q >= 'a' && *q <= 'f' ? *q - 'a' + 10
				: hex && *q >= 'A' && *q <= 'F' ? *q - 'A' + 10
								: -1;
			if (d < 0)
				break;
			v = v * (hex ? 16 : 10) + (unsigned)d;
		}
		if (digits && q < x->end && *q == ';' && v >= 0x20 && v < 0x7f) {
			x->p = q + 1;
			*c = (char)v;
			return 0;
		}
	}
	return dmpd_xfail(x, "unsupported entity (only &amp; &lt; &gt; &quot; &apos; and "
			  "printable ASCII character references)");
}

static int xml_value(struct xml *x, struct xml_tag *t, size_t *used, const char **val)
{
	if (x->p >= x->end || *x->p != '"') {
		char b[16];
		return dmpd_xfail(x, "expected '\"' to open an attribute value, found %s",
				  xml_what(x, b, sizeof(b)));
	}
	x->p++;
	char *out = t->buf + *used;
	size_t n = 0;
	for (;;) {
		if (x->p >= x->end)
			return dmpd_xfail(x, "attribute value not closed at end of input");
		char c = *x->p;
		if (c == '"') {
			x->p++;
			break;
		}
		if (c == '&') {
			x->p++;
			int r = xml_entity(x, &c);
			if (r)
				return r;
		} else if ((unsigned char)c < 0x20 || (unsigned char)c >= 0x7f || c == '<') {
			char b[16];
			return dmpd_xfail(x, "%s in an attribute value", xml_what(x, b, sizeof(b)));
		} else {
			x->p++;
		}
		if (*used + n + 1 >= XML_VALUES_MAX)
			return dmpd_xfail(x, "attribute values longer than %d bytes",
					  XML_VALUES_MAX);
		out[n++] = c;
	}
	out[n] = '\0';
	*used += n + 1;
	*val = out;
	return 0;
}

/* One name="value" of t at x->p; used counts the bytes of t->buf taken. */
static int xml_attribute(struct xml *x, struct xml_tag *t, size_t *used)
{
	char b[16];
	int r;
	if (t->n == XML_MAX_ATTRS)
		return dmpd_xfail(x, "<%s> has more than %d attributes", t->name, XML_MAX_ATTRS);
	struct xml_attr *a = &t->a[t->n];
	if ((r = xml_name(x, a->name, "attribute")))
		return r;
	for (size_t i = 0; i < t->n; i++)
		if (strcmp(t->a[i].name, a->name) == 0)
			return dmpd_xfail(x, "<%s> repeats attribute %s", t->name, a->name);
	xml_skip_space(x);
	if (x->p >= x->end || *x->p != '=')
		return dmpd_xfail(x, "expected '=' after attribute %s, found %s", a->name,
				  xml_what(x, b, sizeof(b)));
	x->p++;
	xml_skip_space(x);
	if ((r = xml_value(x, t, used, &a->val)))
		return r;
	t->n++;
	return 0;
}

int dmpd_xml_next(struct xml *x, struct xml_tag *t)
{
	char b[16];
	xml_skip_space(x);
	if (x->p >= x->end)
		return 0;
	if (*x->p != '<')
		return dmpd_xfail(x, "unexpected text starting with %s", xml_what(x, b, sizeof(b)));
	t->line = x->line;
	t->n = 0;
	x->p++;
	if (x->p < x->end && (*x->p == '?' || *x->p == '!'))
		return dmpd_xfail(x, "declarations, comments and DOCTYPE are not supported");
	bool close = x->p < x->end && *x->p == '/';
	if (close)
		x->p++;
	int r = xml_name(x, t->name, "element");
	if (r)
		return r;
	size_t used = 0;
	for (;;) {
		bool space = xml_skip_space(x);
		if (x->p >= x->end)
			return dmpd_xfail(x, "<%s%s> not finished at end of input",
					  close ? "/" : "", t->name);
		if (*x->p == '>') {
			x->p++;
			t->type = close ? XT_CLOSE : XT_OPEN;
			return 1;
		}
		if (*x->p == '/' && !close) {
			x->p++;
			if (x->p >= x->end || *x->p != '>')
				return dmpd_xfail(x, "expected '>' after '/' in <%s>", t->name);
			x->p++;
			t->type = XT_EMPTY;
			return 1;
		}
		if (close)
			return dmpd_xfail(x, "unexpected %s in </%s>", xml_what(x, b, sizeof(b)),
					  t->name);
		/* attributes are separated from the name and each other */
		if (!space)
			return dmpd_xfail(x, "unexpected %s in <%s>", xml_what(x, b, sizeof(b)),
					  t->name);
		if ((r = xml_attribute(x, t, &used)))
			return r;
	}
}

const char *dmpd_xml_attr(const struct xml_tag *t, const char *name)
{
	for (size_t i = 0; i < t->n; i++)
		if (strcmp(t->a[i].name, name) == 0)
			return t->a[i].val;
	return NULL;
}
