-- Live canaries: where each stands (its plan, step and when the step began),
-- as JSON (schema::canary::Progress). One per app at most; removed when the
-- canary is promoted or aborted.
CREATE TABLE canaries (
    app TEXT PRIMARY KEY NOT NULL,
    progress TEXT NOT NULL
);
