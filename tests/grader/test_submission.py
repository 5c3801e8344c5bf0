"""``grader.submission``: zips are unpacked only when every entry stays a regular file inside the
destination; a topic's sources are read as text, without tests, conftest files or links."""
from __future__ import annotations

import os
import stat

import pytest

from grader import grade
from grader import submission as sub
from grader.sandbox import LearnerError
from tests.grader import classroom as c

FILE, DIR, LINK = stat.S_IFREG | 0o644, stat.S_IFDIR | 0o755, stat.S_IFLNK | 0o777


def _zip(tmp_path, entries) -> str:
    path = tmp_path / "sub.zip"
    path.write_bytes(c.zip_bytes(entries))
    return str(path)


@pytest.mark.parametrize("entries, why", [
    ([("/etc/cron.d/evil", "x", FILE)], "absolute path"),
    ([("\\windows\\evil.py", "x", FILE)], "absolute path"),
    ([("C:/evil.py", "x", FILE)], "absolute path"),
    ([("perplexity\\..\\..\\evil.py", "x", FILE)], "absolute path"),
    ([("perplexity/../../evil.py", "x", FILE)], "path leaving the archive"),
    ([("../evil.py", "x", FILE)], "path leaving the archive"),
    ([("perplexity/perplexity.py", "x", FILE), ("perplexity/link.py", "/etc/passwd", LINK)], "symbolic link"),
    ([("perplexity", "../..", LINK), ("perplexity/perplexity.py", "x", FILE)], "symbolic link"),
], ids=["absolute", "backslash-absolute", "drive", "backslash-dotdot", "dotdot", "leading-dotdot", "file-link",
        "folder-link"])
def test_unpack_refuses_entries_that_leave_the_folder_or_link(tmp_path, entries, why):
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(sub.BadArchive, match=why):
        sub.unpack(_zip(tmp_path, entries), str(dest))
    assert os.listdir(dest) == []  # refused before anything was written
    assert not (tmp_path / "evil.py").exists()


def test_unpack_refuses_oversized_archives_and_non_zips(tmp_path):
    big = [(f"perplexity/f{i}.py", "", FILE) for i in range(1001)]
    with pytest.raises(sub.BadArchive, match="too large"):
        sub.unpack(_zip(tmp_path, big), str(tmp_path / "d1"))
    bomb = [("perplexity/perplexity.py", "0" * (sub.MAX_ZIP_TOTAL + 1), FILE)]
    with pytest.raises(sub.BadArchive, match="too large"):
        sub.unpack(_zip(tmp_path, bomb), str(tmp_path / "d2"))
    (tmp_path / "fake.zip").write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(sub.BadArchive, match="not a readable zip"):
        sub.unpack(str(tmp_path / "fake.zip"), str(tmp_path / "d3"))


@pytest.mark.parametrize("prefix", ["", "work/", "work/exercises/"], ids=["flat", "top-folder", "exercises"])
def test_unpack_accepts_a_normal_zip_and_finds_its_topics(tmp_path, prefix):
    source = c.solution_source()
    entries = [(prefix + "perplexity/", None, DIR), (prefix + "perplexity/perplexity.py", source, FILE),
               (prefix + "perplexity/helpers.py", "X = 1\n", FILE)]
    dest = tmp_path / "dest"
    dest.mkdir()
    sub.unpack(_zip(tmp_path, entries), str(dest))
    root = sub.find_root(str(dest), ["perplexity"])
    assert root == os.path.join(str(dest), prefix).rstrip("/")
    assert sub.topic_files(root, "perplexity") == {"helpers.py": "X = 1\n", "perplexity.py": source}


def test_topic_files_leave_out_tests_conftest_links_and_other_files(tmp_path):
    folder = tmp_path / "perplexity"
    folder.mkdir()
    (folder / "perplexity.py").write_text("A = 1\n")
    (folder / "conftest.py").write_text("import pytest\n")
    (folder / "test_perplexity.py").write_text("def test_x(): pass\n")
    (folder / "notes.txt").write_text("hello")
    (folder / "my-helper.py").write_text("B = 2\n")
    os.symlink(c.SOLUTION, folder / "linked.py")
    (folder / "sub").mkdir()
    assert sub.topic_files(str(tmp_path), "perplexity") == {"perplexity.py": "A = 1\n"}


def test_topic_files_explain_what_is_missing_or_unreadable(tmp_path):
    with pytest.raises(LearnerError, match="no folder perplexity/"):
        sub.topic_files(str(tmp_path), "perplexity")
    (tmp_path / "perplexity").mkdir()
    (tmp_path / "perplexity" / "helpers.py").write_text("")
    with pytest.raises(LearnerError, match="no file perplexity/perplexity.py"):
        sub.topic_files(str(tmp_path), "perplexity")
    (tmp_path / "perplexity" / "perplexity.py").write_bytes(b"\xff\xfe not utf-8")
    with pytest.raises(LearnerError, match="not UTF-8"):
        sub.topic_files(str(tmp_path), "perplexity")
    (tmp_path / "perplexity" / "perplexity.py").write_text("x" * (sub.MAX_FILE + 1))
    with pytest.raises(LearnerError, match="larger than"):
        sub.topic_files(str(tmp_path), "perplexity")
    (tmp_path / "perplexity" / "perplexity.py").write_text("x = 1\n")  # files each within, too many together:
    for k in range(sub.MAX_TOPIC // sub.MAX_FILE + 1):  # the static check parses them all, off the clock
        (tmp_path / "perplexity" / f"part{k}.py").write_text("#" * (sub.MAX_FILE - 1))
    with pytest.raises(LearnerError, match="KiB of Python"):
        sub.topic_files(str(tmp_path), "perplexity")


def test_a_linked_topic_folder_is_not_followed(tmp_path):
    os.symlink(os.path.dirname(c.SOLUTION), tmp_path / "perplexity")
    with pytest.raises(LearnerError, match="no folder perplexity/"):
        sub.topic_files(str(tmp_path), "perplexity")


@pytest.mark.parametrize("where", ["exercises", "work/exercises"])
def test_a_linked_exercises_folder_is_not_followed(tmp_path, where):
    """A folder submission whose ``exercises`` is a link to a classmate's work or to the solutions:
    no topic folder is found there, so nothing of theirs is graded as its own."""
    classmate = c.good(str(tmp_path / "class" / "alice"))
    link = tmp_path / "class" / "mallory" / where
    link.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(classmate, link)
    assert sub.find_root(str(tmp_path / "class" / "mallory"), ["perplexity"]) is None
    subs = {s.name: s for s in grade.collect(str(tmp_path / "class"), ["perplexity"], str(tmp_path))}
    s = subs["mallory"]
    assert s.problem.startswith("no topic folder found") and subs["alice"].problem is None
    with pytest.raises(LearnerError, match="no folder perplexity/"):
        sub.topic_files(s.root, "perplexity")


def _damaged(data: bytes, what: str) -> bytes:
    raw = bytearray(data)
    if what == "crc":  # the content changed after its CRC was computed (entries are stored)
        at = raw.index(b"X = 1")
        raw[at] = ord("Y")
    else:  # the encrypted flag, in the local and the central header
        raw[6] |= 1
        raw[raw.index(b"PK\x01\x02") + 8] |= 1
    return bytes(raw)


@pytest.mark.parametrize("entries, damage, why", [
    ([("perplexity", "x", FILE), ("perplexity/perplexity.py", "X = 1\n", FILE)], None, "could not be unpacked"),
    ([(".", "x", FILE)], None, "malformed path"),
    ([("perplexity//perplexity.py", "X = 1\n", FILE)], None, "malformed path"),
    ([("perplexity/\x1b[2J.py", "X = 1\n", FILE)], None, "malformed path"),
    ([("/".join(["d"] * 40) + "/x.py", "X = 1\n", FILE)], None, "too deep"),
    ([("perplexity/perplexity.py", "X = 1\n", FILE)], "crc", "could not be unpacked"),
    ([("perplexity/perplexity.py", "X = 1\n", FILE)], "encrypted", "encrypted"),
], ids=["file-and-folder", "dot", "empty-part", "control-chars", "too-deep", "bad-crc", "encrypted"])
def test_unpack_refuses_malformed_archives_with_a_reason(tmp_path, entries, damage, why):
    data = c.zip_bytes(entries)
    path = tmp_path / "sub.zip"
    path.write_bytes(_damaged(data, damage) if damage else data)
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(sub.BadArchive, match=why):
        sub.unpack(str(path), str(dest))


def test_any_failure_reading_a_submission_refuses_it_alone(tmp_path, monkeypatch):
    from grader import grade

    folder = tmp_path / "class"
    c.good(str(folder / "alice"))
    c.good(str(folder / "bob"))

    def broken(root, topics):
        if "bob" in root:
            raise OSError("a disk that lies")
        return "x"
    monkeypatch.setattr(sub, "digest", broken)
    subs = {s.name: s for s in grade.collect(str(folder), ["perplexity"], str(tmp_path))}
    assert subs["alice"].problem is None and subs["alice"].root
    assert subs["bob"].root is None and "could not be read (OSError: a disk that lies)" in subs["bob"].problem


def test_a_folder_name_that_is_not_text_is_refused_alone(tmp_path):
    from grader import grade

    folder = tmp_path / "class"
    c.good(str(folder / "alice"))
    c.good(os.fsdecode(os.fsencode(str(folder)) + b"/bad\xff\xfename"))
    subs = sorted(grade.collect(str(folder), ["perplexity"], str(tmp_path)), key=lambda s: s.name)
    assert [s.name for s in subs] == ["alice", "bad\ufffd\ufffdname"]
    assert subs[0].problem is None and subs[0].root
    assert subs[1].root is None and "not valid text" in subs[1].problem


def test_entries_claiming_one_student_name_are_graded_apart_and_flagged(tmp_path):
    """``alice/`` and ``alice.zip`` (or ``Alice/``) in one class folder: which is alice's cannot be
    told, so each is graded under its own entry's name, flagged, and none is recorded as alice."""
    folder = tmp_path / "class"
    c.good(str(folder / "alice"))
    c.good(str(folder / "Bob"))
    c.good(str(folder / "bob"))
    c.good(str(folder / "carol"))
    (folder / "alice.zip").write_bytes(c.zip_bytes([("perplexity/perplexity.py", "x = 1\n", FILE)]))
    subs = {s.name: s for s in grade.collect(str(folder), ["perplexity"], str(tmp_path))}
    assert sorted(subs) == ["Bob (folder)", "alice (folder)", "alice.zip", "bob (folder)", "carol"]
    for name in ("alice (folder)", "alice.zip"):
        assert "2 submissions claim the student name 'alice' (alice, alice.zip)" in subs[name].problem
        assert subs[name].root  # still graded
    assert "claim the student name 'Bob'" in subs["Bob (folder)"].problem
    assert subs["carol"].problem is None



def test_a_flagged_entry_never_takes_the_name_of_another_entry(tmp_path):
    """``alice/`` and ``alice.zip`` are flagged and named after their entries: a classmate whose own
    folder is called ``alice (folder)`` keeps that name, alone and unflagged."""
    folder = tmp_path / "class"
    for name in ("alice", "alice (folder)", "alice (folder) (2)"):
        c.good(str(folder / name))
    (folder / "alice.zip").write_bytes(c.zip_bytes([("perplexity/perplexity.py", "x = 1\n", FILE)]))
    subs = grade.collect(str(folder), ["perplexity"], str(tmp_path))
    names = [s.name for s in subs]
    assert len(set(names)) == len(names) == 4
    mine = [s for s in subs if os.path.basename(s.source) == "alice (folder)"]
    assert [s.name for s in mine] == ["alice (folder)"] and mine[0].problem is None
    assert all("claim the student name 'alice'" in s.problem for s in subs
               if os.path.basename(s.source) in ("alice", "alice.zip"))

@pytest.mark.parametrize("look_alike", ["alice ", "alice.", "\uff41lice", "al\u200bice", "ALICE", "\u0430lice",
                                       "\u0391LICE", "ali\u034fce", "alice\ufe0f", "al\u3164ice", "\u0251lice",
                                       "al\u0131ce", "al\u2800ice"],
                         ids=["trailing-space", "trailing-dot", "full-width", "zero-width-space", "case", "cyrillic-a",
                              "greek-capital-alpha", "grapheme-joiner", "variation-selector", "hangul-filler",
                              "latin-alpha", "dotless-i", "braille-blank"])
def test_names_that_read_as_a_classmates_are_flagged_too(tmp_path, look_alike):
    folder = tmp_path / "class"
    c.good(str(folder / "alice"))
    c.good(str(folder / "jose\u0301"))  # josé with a separate accent
    c.good(str(folder / "jos\u00e9"))  # josé in one character
    c.good(str(folder / look_alike))
    subs = {s.name: s for s in grade.collect(str(folder), ["perplexity"], str(tmp_path))}
    assert "alice" not in subs and subs["alice (folder)"].problem and subs[f"{look_alike} (folder)"].problem
    assert sum("claim the student name" in (s.problem or "") for s in subs.values()) == 4  # the two josés too


@pytest.mark.parametrize("entry", ["alice.ZIP", "alice.zip "])
def test_an_archive_named_in_capitals_or_with_a_trailing_space_is_graded(tmp_path, entry):
    folder = tmp_path / "class"
    folder.mkdir()
    (folder / entry).write_bytes(c.zip_bytes([("perplexity/perplexity.py", "x = 1\n", FILE)]))
    assert [s.name for s in grade.collect(str(folder), ["perplexity"], str(tmp_path))] == ["alice"]


def test_names_shown_the_same_are_one_student_too(tmp_path):
    """A control character in a name is written out wherever it is shown (``mallory\\x01``): a name
    typed that way is the same student, flagged, not a second row that the gradebook merges."""
    folder = tmp_path / "class"
    for name in ("mallory\x01", "mallory\\x01", "alice"):
        c.good(str(folder / name))
    subs = {s.name: s for s in grade.collect(str(folder), ["perplexity"], str(tmp_path))}
    assert subs["alice"].problem is None
    flagged = [s for s in subs.values() if s.name != "alice"]
    assert len(flagged) == 2 and all("claim the student name" in s.problem for s in flagged), subs


def test_a_name_with_a_line_break_is_shown_on_one_line(tmp_path):
    """A folder named ``victim   0/10\\nmallory`` must not print a row of its own making in a table."""
    folder = tmp_path / "class"
    c.good(str(folder / "victim   0\u221510\nmallory"))
    c.good(str(folder / "victim"))
    names = sorted(s.name for s in grade.collect(str(folder), ["perplexity"], str(tmp_path)))
    assert names == ["victim", "victim   0\u221510\\nmallory"], names
