"""Static checks of the Julia package (bindings/julia/Etcdrs) that need no Julia runtime.

Julia source is read through fatou's parser (`fatou parse --to sexpr`, JuliaSyntax's
s-expression projection), never with regular expressions:
- every `ccall` / `@threadcall` is found and checked against include/etcdrs.h: the symbol
  exists, and the return and argument types correspond position by position;
- the sequence of C calls each public function makes (helpers expanded, in evaluation
  order) is computed, to be compared with the C program that runs the same sequences
  under valgrind (test/c/sequences.c).
"""

import re
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
PACKAGE = REPO / "bindings" / "julia" / "Etcdrs"
HEADER = REPO / "include" / "etcdrs.h"
SEQUENCES_C = PACKAGE / "test" / "c" / "sequences.c"


# -- s-expressions -------------------------------------------------------------------------

def fatou() -> str:
    exe = shutil.which("fatou")
    if exe is None:
        raise RuntimeError("fatou is needed: pip install fatou (scripts/test-julia.sh does)")
    return exe


def parse_julia(path: Path):
    """The file's syntax tree: nested lists of atoms (strings)."""
    out = subprocess.run([fatou(), "parse", "--to", "sexpr", str(path)], check=True,
                         capture_output=True, text=True).stdout
    return parse_sexpr(out)


def parse_sexpr(text: str):
    tokens = re.findall(r'"(?:[^"\\]|\\.)*"|[()]|[^\s()"]+', text)
    stack = [[]]
    for t in tokens:
        if t == "(":
            stack.append([])
        elif t == ")":
            done = stack.pop()
            stack[-1].append(done)
        else:
            stack[-1].append(t)
    assert len(stack) == 1, "unbalanced s-expression"
    return stack[0][0]


def walk(node):
    """Every list node, outermost first."""
    if isinstance(node, list):
        yield node
        for child in node:
            yield from walk(child)


def julia_type(node) -> str:
    """A type expression as Julia text: (curly Ptr (curly Ptr Cvoid)) -> Ptr{Ptr{Cvoid}}."""
    if isinstance(node, str):
        return node
    if node[0] == "curly":
        return "%s{%s}" % (julia_type(node[1]), ",".join(julia_type(n) for n in node[2:]))
    return "(" + " ".join(julia_type(n) for n in node) + ")"


# -- the header ----------------------------------------------------------------------------

PROTOTYPE = re.compile(r"^(?P<ret>[A-Za-z_][\w\s\*]*?)\s*\b(?P<name>etcdrs_\w+)\((?P<params>[^)]*)\);",
                       re.M)


def header_functions(text: str):
    """{name: (return type, [parameter types])} of every function the header declares."""
    functions = {}
    for m in PROTOTYPE.finditer(text):
        params = m.group("params").strip()
        types = [] if params in ("", "void") else [param_type(p) for p in params.split(",")]
        functions[m.group("name")] = (normalize(m.group("ret")), types)
    return functions


def param_type(param: str) -> str:
    """'const struct etcdrs_client *client' -> 'struct etcdrs_client *'."""
    m = re.match(r"^(.*?)(\w+)\s*$", param.strip())
    return normalize(m.group(1))


def normalize(ctype: str) -> str:
    t = re.sub(r"\bconst\b", "", ctype)
    t = re.sub(r"\s*\*", " *", t)
    return re.sub(r"\s+", " ", t).strip().replace("* *", "**")


SCALARS = {
    "etcdrs_status": {"UInt32", "Cuint"},
    "uint32_t": {"UInt32", "Cuint"},
    "size_t": {"Csize_t"},
    "uint64_t": {"UInt64"},
    "int64_t": {"Int64"},
    "bool": {"Bool"},
    "void": {"Cvoid"},
    "struct etcdrs_str": {"EtcdrsStr"},
    "char *": {"Ptr{UInt8}", "Cstring"},
    "void *": {"Ptr{Cvoid}", "Ptr{UInt8}"},
    "char **": {"Ptr{Ptr{UInt8}}"},
    "bool *": {"Ptr{Bool}"},
    "uint64_t *": {"Ptr{UInt64}"},
    "int64_t *": {"Ptr{Int64}"},
}


def julia_types_for(ctype: str):
    """The Julia types that have C type `ctype`'s layout in a ccall."""
    if ctype in SCALARS:
        return SCALARS[ctype]
    if re.fullmatch(r"struct etcdrs_\w+ \*", ctype):
        return {"Ptr{Cvoid}"}
    if re.fullmatch(r"struct etcdrs_\w+ \*\*", ctype):
        return {"Ptr{Ptr{Cvoid}}"}
    return set()


# -- ccalls --------------------------------------------------------------------------------

CALL_FORMS = {("call", "ccall"), ("macrocall-p", "@threadcall"), ("macrocall", "@threadcall")}


def ccalls(tree):
    """(symbol or None, return type, [argument types], number of arguments passed, the node)
    of every ccall and @threadcall in the tree."""
    found = []
    for node in walk(tree):
        if len(node) < 2 or not isinstance(node[0], str) or not isinstance(node[1], str):
            continue
        if (node[0], node[1]) in CALL_FORMS:
            target, ret, types = node[2], node[3], node[4]
            symbol = None
            if (isinstance(target, list) and target[:2] == ["call", "fn"]
                    and isinstance(target[2], list) and target[2][0] == "quote-:"):
                symbol = target[2][1]
            arg_types = [julia_type(t) for t in types[1:]] if isinstance(types, list) else None
            found.append((symbol, julia_type(ret), arg_types, len(node) - 5, node))
        elif node[1] == "@ccall":
            found.append((None, None, None, 0, node))
    return found


def check_ccalls(trees, header_text: str):
    """Every mismatch between the package's C calls and the header, as text."""
    header = header_functions(header_text)
    problems = []
    for path, tree in trees:
        for symbol, ret, arg_types, nargs, node in ccalls(tree):
            where = "%s: %s" % (path.name, symbol or "a C call")
            if symbol is None or arg_types is None:
                problems.append("%s: not in the checked form ccall(fn(:name), Ret, (Args...), args...)"
                                % where)
                continue
            if symbol not in header:
                problems.append("%s: no such function in include/etcdrs.h" % where)
                continue
            c_ret, c_params = header[symbol]
            if ret not in julia_types_for(c_ret):
                problems.append("%s: returns %s in C, %s here" % (where, c_ret, ret))
            if len(arg_types) != len(c_params):
                problems.append("%s: %d parameters in C, %d here" % (where, len(c_params), len(arg_types)))
                continue
            if nargs != len(arg_types):
                problems.append("%s: %d argument types but %d arguments" % (where, len(arg_types), nargs))
            for i, (c, j) in enumerate(zip(c_params, arg_types), 1):
                if j not in julia_types_for(c):
                    problems.append("%s: parameter %d is %s in C, %s here" % (where, i, c, j))
    return problems


def check_struct_layouts(trees, header_text: str):
    """The isbits struct standing for etcdrs_str has its fields, in order, with C's types."""
    m = re.search(r"typedef struct etcdrs_str \{(.*?)\} etcdrs_str;", header_text, re.S)
    c_fields = [(normalize(t), n) for t, n in re.findall(r"([\w\s\*]+?)\s*\b(\w+);", m.group(1))]
    problems = []
    for path, tree in trees:
        for node in walk(tree):
            if node[:2] == ["struct", "EtcdrsStr"]:
                fields = [(julia_type(f[2]), f[1]) for f in node[2][1:] if f[0] == "::-i"]
                want = [(c, n) for c, n in c_fields]
                if [n for _, n in fields] != [n for _, n in want]:
                    problems.append("EtcdrsStr: fields %s, C has %s" % (fields, want))
                for (j, n), (c, _) in zip(fields, want):
                    if j not in julia_types_for(c):
                        problems.append("EtcdrsStr.%s: %s in C, %s here" % (n, c, j))
    return problems


# -- call sequences ------------------------------------------------------------------------

def function_name(call):
    """The name a definition's signature defines: f, Base.close -> close, S."""
    head = call
    while isinstance(head, list) and head[0] in ("::-i", "where"):
        head = head[1]
    name = head[1]
    if isinstance(name, list) and name[0] == ".":
        name = name[-1]
    return name


def definitions(tree):
    """[(name, documented, body)] of every function definition, in source order (inner
    constructors of a documented struct count as documented)."""
    out = []

    def visit(node, documented):
        if not isinstance(node, list) or not node:
            return
        if node[0] == "doc":
            visit(node[2], True)
            return
        if node[0] in ("function", "function-=") and isinstance(node[1], list):
            out.append((function_name(node[1]), documented, node[2]))
            return
        if node[0] in ("struct", "struct-mut"):
            for child in node[2][1:]:
                visit(child, documented)
            return
        for child in node[1:]:
            visit(child, False)

    visit(tree, False)
    return out


def calls_in_order(node, out):
    """The names called in `node`, in evaluation order (arguments before their call)."""
    if not isinstance(node, list) or not node:
        return
    for child in node[1:]:
        calls_in_order(child, out)
    if node[0] in ("call", "call-i", "call-pre") and isinstance(node[1], str):
        out.append(node[1])
    elif node[0] == "call" and isinstance(node[1], list) and node[1][0] == ".":
        out.append(node[1][-1])


def julia_sequences(tree):
    """{public function name (#n for its n-th method when it has several): [C calls]}."""
    defs = definitions(tree)
    bodies = {}
    for name, _, body in defs:
        bodies.setdefault(name, []).append(body)

    def expand(body, depth=0):
        names = []
        calls_in_order(body, names)
        seq = []
        for n in names:
            if n.startswith("etcdrs_"):
                seq.append(n)
            elif n in bodies and len(bodies[n]) == 1 and depth < 10:
                seq.extend(expand(bodies[n][0], depth + 1))
        return seq

    public = {}
    counts = {}
    for name, documented, body in defs:
        if not documented:
            continue
        counts[name] = counts.get(name, 0) + 1
        key = name if len(bodies[name]) == 1 else "%s#%d" % (name, counts[name])
        public[key] = expand(body)
    return public


C_FUNCTION = re.compile(r"^static [\w\s\*]+?\b(\w+)\([^;{]*\)\s*\{", re.M)


def c_functions(text: str):
    """{name: body} of the C file's static functions."""
    out = {}
    for m in C_FUNCTION.finditer(text):
        depth, i = 1, m.end()
        while depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        out[m.group(1)] = re.sub(r"//[^\n]*|/\*.*?\*/", "", text[m.end():i - 1], flags=re.S)
    return out


def c_sequences(text: str):
    """{julia name: [C calls]} of the C file's seq_<name> functions (seq_<name>__<n> for
    the n-th method), helpers expanded, in source order."""
    funcs = c_functions(text)

    def expand(body, depth=0):
        seq = []
        for n in re.findall(r"\b(\w+)\s*\(", body):
            if n.startswith("etcdrs_"):
                seq.append(n)
            elif n in funcs and not n.startswith("seq_") and depth < 10:
                seq.extend(expand(funcs[n], depth + 1))
            elif n.startswith("seq_") and n in funcs and depth < 10:
                seq.extend(expand(funcs[n], depth + 1))
        return seq

    out = {}
    for name, body in funcs.items():
        if name.startswith("seq_"):
            julia = name[len("seq_"):].replace("__", "#")
            out[julia] = expand(body)
    return out
