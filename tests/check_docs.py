"""Checks that every ```cpp block in docs/*.md starting with '// snippet: NAME' equals docs/snippets/NAME.cpp,
and that every snippet file is shown somewhere, so the compiled snippets and the docs cannot drift apart."""
import pathlib
import re
import sys

root = pathlib.Path(sys.argv[1])
snippets = {p.stem: p.read_text() for p in (root / "docs" / "snippets").glob("*.cpp")}
shown = set()
errors = []
for md in sorted((root / "docs").glob("*.md")):
    for block in re.findall(r"```cpp\n(.*?)```", md.read_text(), re.S):
        m = re.match(r"// snippet: (\w+)\n", block)
        if not m:
            continue
        name = m.group(1)
        shown.add(name)
        if name not in snippets:
            errors.append(f"{md.name}: snippet '{name}' has no docs/snippets/{name}.cpp")
        elif snippets[name] != block:
            errors.append(f"{md.name}: snippet '{name}' differs from docs/snippets/{name}.cpp")
for name in sorted(set(snippets) - shown):
    errors.append(f"docs/snippets/{name}.cpp is not shown in any docs/*.md")
print("\n".join(errors) or f"{len(shown)} snippets match")
sys.exit(1 if errors else 0)
