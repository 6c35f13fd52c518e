-- Roles and sites. A session carries the role and sites its sign-in gave
-- (an OpenID Connect group mapping); empty role means the user's admin
-- flag decides, empty sites means every site. An API token has a role;
-- the tokens made before roles existed could do everything, so they stay
-- admin. An appliance belongs to a site; empty means none.
ALTER TABLE sessions ADD COLUMN role TEXT NOT NULL DEFAULT '';
ALTER TABLE sessions ADD COLUMN sites TEXT NOT NULL DEFAULT '';
ALTER TABLE api_tokens ADD COLUMN role TEXT NOT NULL DEFAULT 'admin';
ALTER TABLE appliances ADD COLUMN site TEXT NOT NULL DEFAULT '';
