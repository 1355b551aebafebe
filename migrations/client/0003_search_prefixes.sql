-- Short English prefixes (`he`, `co`) expanded to every matching token at query time took
-- ~30 ms at p95 over 1M messages; FTS5 prefix indexes for 1- and 2-character prefixes answer
-- them directly. The index is rebuilt from messages by natter-core when it opens the store
-- (search index version 2).
DROP TABLE search_word;
CREATE VIRTUAL TABLE search_word USING fts5(
    text, content = '', contentless_delete = 1,
    tokenize = 'unicode61 remove_diacritics 2', prefix = '1 2'
);
