"""The .xlsx file itself: container safety, reading into a typed log, the surgical writer, the
template and its upgrade."""
