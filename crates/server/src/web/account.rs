//! `/account`: sign in with a token (kept in this browser, sent as the API's `Authorization`
//! header), my feeds, publish a value or upload a file, my subscriptions, my tokens; for
//! admins, users and source tiers. The page is a frame: `app.js` fills it from the native API,
//! so every action is checked exactly as the API checks it.

use axum::extract::State;
use axum::response::Response;

use super::Ctx;
use crate::AppState;

pub async fn page(State(state): State<AppState>, ctx: Ctx) -> Response {
    let signup = if !state.config.signup.open {
        SIGNUP_CLOSED.to_string()
    } else if ctx.caller.0.is_some() {
        String::new()
    } else {
        format!(
            r#"<section id="signup" aria-labelledby="signup-h"><h2 id="signup-h">Sign up</h2>
<p class="sub">Sign-up is open on this hub: pick a user name and you get a token with read and write scopes, shown once (at most {} sign-ups an hour from one address).</p>
<form id="signup-form" class="filters"><label>User name <input id="signup-name" name="name" required pattern="[A-Za-z0-9._-]+" maxlength="64" autocomplete="username"></label><button type="submit">Sign up</button></form>
<p id="signup-msg" role="status" aria-live="polite"></p>
<p id="signup-token" hidden>Your token (copy it now: the hub keeps only its hash): <code id="new-token"></code> <button type="button" id="signup-continue">Continue, signed in</button></p></section>"#,
            state.config.signup.per_address_per_hour
        )
    };
    let body = r#"<h1>Account</h1>
<section id="signin" aria-labelledby="signin-h"><h2 id="signin-h">Sign in</h2>
<p class="sub">Paste a token (from <code>apiary token create</code> or an admin). It stays in this browser and is sent only to this hub, as the API's <code>Authorization</code> header.</p>
<form id="signin-form" class="filters"><label>Token <input id="token" type="password" autocomplete="off" required></label><button type="submit">Sign in</button></form>
<p id="signed-in" hidden>Signed in as <strong id="me"></strong>. <button type="button" id="signout">Sign out</button></p>
<p id="signin-msg" role="status" aria-live="polite"></p></section>
{signup}
<div id="account-panels" hidden>
<section id="my-feeds"><h2>My feeds</h2><ul id="my-feeds-list" class="plain"></ul>
<form id="feed-form" class="filters"><label>New feed <input name="name" required pattern="[A-Za-z0-9._-]+" placeholder="name"></label>
<label>Visibility <select name="visibility"><option>public</option><option>private</option></select></label>
<label>Description <input name="description"></label><button type="submit">Create</button></form><p class="msg" role="status"></p></section>
<section id="publish"><h2>Publish</h2>
<form id="publish-form" class="filters"><label>Feed <select name="feed" class="writable-feeds" required></select></label>
<label>Value <input name="indicator" required placeholder="198.51.100.7, evil.example, …"></label>
<label>Tags <input name="tags" placeholder="scanner,ssh"></label><button type="submit">Publish</button></form>
<form id="upload-form" class="filters"><label>Feed <select name="feed" class="writable-feeds" required></select></label>
<label>File <input name="file" type="file" required accept=".txt,.csv,.json,.jsonl,.ndjson"></label><button type="submit">Upload</button></form>
<p class="msg" id="publish-msg" role="status" aria-live="polite"></p></section>
<section id="my-subscriptions"><h2>My subscriptions</h2><ul id="subs-list" class="plain"></ul></section>
<section id="my-tokens"><h2>My tokens</h2><div class="scroll"><table class="list"><thead><tr><th scope="col">Id</th><th scope="col">Label</th><th scope="col">Scopes</th><th scope="col">Expires</th><th scope="col"></th></tr></thead><tbody id="tokens-list"></tbody></table></div>
<form id="token-form" class="filters"><label>Label <input name="label"></label>
<fieldset><legend>Scopes</legend><label><input type="checkbox" name="read" checked> read</label> <label><input type="checkbox" name="write"> write</label></fieldset>
<button type="submit">Create token</button></form><p class="msg" id="token-msg" role="status" aria-live="polite"></p></section>
<section id="admin" hidden><h2>Admin</h2>
<h3>Users</h3><ul id="users-list" class="plain"></ul>
<form id="user-form" class="filters"><label>New user <input name="name" required></label><label><input type="checkbox" name="admin"> admin</label><button type="submit">Create</button></form>
<p class="msg" role="status"></p>
<h3>Source tiers</h3><div id="tiers"></div></section>
</div>"#;
    ctx.page("Account", "/account", body.replace("{signup}", &signup))
}

const SIGNUP_CLOSED: &str = r#"<p class="sub" id="signup-closed">Sign-up is closed on this hub: its admin creates accounts (<code>apiary user add</code>, or below when signed in as an admin).</p>"#;
