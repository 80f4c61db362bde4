"""Turn dataset objects into the JSON Gitea 1.27 sends.

Field sets follow real responses (Gitea 1.25.3 recordings plus the fields the 1.27 Swagger spec
adds); ``None`` is rendered where Gitea renders ``null`` (Go pointers and nil slices).
URLs are built from the request's own scheme and host, as Gitea builds them from ROOT_URL.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

from .dataset import Comment, Dataset, Issue, Label, Milestone, Release, Repo, User
from .gitmodel import Commit, GitRepo, Signature, TreeEntry

ZERO_TIME = "0001-01-01T00:00:00Z"
EPOCH = "1970-01-01T00:00:00Z"
NOREPLY = "noreply.localhost"


def ts(value: datetime | None) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


@dataclass(frozen=True)
class Ctx:
    """What every renderer needs: where we are (``root`` ends with "/") and who is asking."""

    root: str
    ds: Dataset
    viewer: str | None

    @property
    def api(self) -> str:
        return self.root + "api/v1/"

    @property
    def host(self) -> str:
        return self.root.split("://", 1)[1].rstrip("/").split(":")[0]


def _q(value: str) -> str:
    return quote(value, safe="/")


def user_json(ctx: Ctx, user: User) -> dict[str, Any]:
    me = ctx.ds.user(ctx.viewer)
    authed = me is not None and (me.is_admin or me.login == user.login)
    if user.is_org:
        email = ""
    elif ctx.viewer is None:
        email = f"{user.login}@{NOREPLY}"
    else:
        email = user.email
    digest = hashlib.md5((user.email or user.login).encode()).hexdigest()
    return {
        "id": user.id,
        "login": user.login,
        "login_name": "",
        "source_id": 0,
        "full_name": user.full_name,
        "email": email,
        "avatar_url": f"{ctx.root}{'avatars' if user.is_org else 'avatar'}/{digest}",
        "html_url": f"{ctx.root}{user.login}",
        "language": user.language if authed else "",
        "is_admin": user.is_admin if authed else False,
        "last_login": ts(user.last_login) if authed and user.last_login else ZERO_TIME,
        "created": ts(user.created),
        "restricted": False,
        "active": not user.is_org,
        "prohibit_login": False,
        "location": user.location,
        "website": user.website,
        "description": user.description,
        "visibility": user.visibility,
        "followers_count": user.followers,
        "following_count": user.following,
        "starred_repos_count": user.starred,
        "username": user.login,  # Gitea's MarshalJSON adds this compatibility alias; not in the spec
    }


def user_ref(ctx: Ctx, login: str | None) -> dict[str, Any] | None:
    user = ctx.ds.user(login)
    return user_json(ctx, user) if user else None


def _permissions(access: str | None) -> dict[str, bool]:
    return {
        "admin": access in ("admin", "owner"),
        "push": access in ("admin", "owner", "write"),
        "pull": access is not None,
    }


def repo_json(ctx: Ctx, repo: Repo) -> dict[str, Any]:
    owner = ctx.ds.user(repo.owner)
    assert owner is not None
    html = f"{ctx.root}{repo.full_name}"
    api = f"{ctx.api}repos/{repo.full_name}"
    open_issues = sum(1 for i in repo.issues if not i.is_pull and i.state == "open")
    open_pulls = sum(1 for i in repo.issues if i.is_pull and i.state == "open")
    licenses = ["MIT"] if not repo.empty and b"MIT License" in _file(repo, "LICENSE") else []
    return {
        "id": repo.id,
        "owner": user_json(ctx, owner),
        "name": repo.name,
        "full_name": repo.full_name,
        "description": repo.description,
        "empty": repo.empty,
        "private": repo.private,
        "fork": False,
        "template": False,
        "mirror": False,
        "size": 22 + repo.size_kib if not repo.empty else 22,  # KiB, .git overhead included
        "language": repo.language,
        "languages_url": f"{api}/languages",
        "html_url": html,
        "url": api,
        "link": "",
        "ssh_url": f"git@{ctx.host}:{repo.full_name}.git",
        "clone_url": f"{html}.git",
        "original_url": "",
        "website": repo.website,
        "stars_count": repo.stars,
        "forks_count": repo.forks,
        "watchers_count": repo.watchers,
        "open_issues_count": open_issues,
        "open_pr_counter": open_pulls,
        "release_counter": sum(1 for r in repo.releases if not r.draft),
        "default_branch": repo.default_branch,
        "archived": repo.archived,
        "created_at": ts(repo.created),
        "updated_at": ts(repo.updated),
        "archived_at": ts(repo.archived_at) if repo.archived_at else EPOCH,
        "permissions": _permissions(ctx.ds.access(repo, ctx.viewer)),
        "has_code": not repo.empty,
        "has_issues": True,
        "internal_tracker": {
            "enable_time_tracker": True,
            "allow_only_contributors_to_track_time": True,
            "enable_issue_dependencies": True,
        },
        "has_wiki": repo.has_wiki,
        "has_pull_requests": True,
        "has_projects": True,
        "projects_mode": "all",
        "has_releases": True,
        "has_packages": True,
        "has_actions": True,
        "ignore_whitespace_conflicts": False,
        "allow_merge_commits": True,
        "allow_rebase": True,
        "allow_rebase_explicit": True,
        "allow_squash_merge": True,
        "allow_fast_forward_only_merge": True,
        "allow_rebase_update": True,
        "allow_merge_update": True,
        "allow_manual_merge": False,
        "autodetect_manual_merge": False,
        "default_delete_branch_after_merge": False,
        "default_merge_style": "merge",
        "default_update_style": "merge",
        "default_allow_maintainer_edit": False,
        "default_target_branch": "",
        "branch_count": len(repo.git.branches),
        "avatar_url": "",
        "internal": False,
        "mirror_interval": "",
        "object_format_name": "sha1",
        "mirror_updated": ZERO_TIME,
        "topics": list(repo.topics),
        "licenses": licenses,
    }


def _file(repo: Repo, path: str) -> bytes:
    head = repo.git.branches.get(repo.default_branch)
    return repo.git.commits[head].snapshot.get(path, b"") if head else b""


def _verification() -> dict[str, Any]:
    return {
        "verified": False,
        "reason": "gpg.error.not_signed_commit",
        "signature": "",
        "signer": None,
        "payload": "",
    }


def _payload_user(ctx: Ctx, sig: Signature) -> dict[str, Any]:
    user = ctx.ds.user_by_email(sig.email)
    return {"name": sig.name, "email": sig.email, "username": user.login if user else ""}


def payload_commit(ctx: Ctx, repo: Repo, commit: Commit) -> dict[str, Any]:
    return {
        "id": commit.sha,
        "message": commit.message,
        "url": f"{ctx.root}{repo.full_name}/commit/{commit.sha}",
        "author": _payload_user(ctx, commit.author),
        "committer": _payload_user(ctx, commit.committer),
        "verification": _verification(),
        "timestamp": ts(commit.when),
        "added": None,
        "removed": None,
        "modified": None,
    }


PROTECTED = {("northwind", "lighthouse", "main"), ("northwind", "deploy-config", "main")}


def branch_json(ctx: Ctx, repo: Repo, name: str) -> dict[str, Any]:
    commit = repo.git.commits[repo.git.branches[name]]
    protected = (repo.owner, repo.name, name) in PROTECTED
    access = ctx.ds.access(repo, ctx.viewer)
    can_push = access in ("admin", "owner", "write") and not protected
    return {
        "name": name,
        "commit": payload_commit(ctx, repo, commit),
        "protected": protected,
        "required_approvals": 1 if protected else 0,
        "enable_status_check": False,
        "status_check_contexts": [],
        "user_can_push": can_push,
        "user_can_merge": access in ("admin", "owner", "write"),
        "effective_branch_protection_name": name if protected else "",
    }


def tag_json(ctx: Ctx, repo: Repo, name: str) -> dict[str, Any]:
    commit_sha, message, tag_sha = repo.git.tags[name]
    commit = repo.git.commits[commit_sha]
    html = f"{ctx.root}{repo.full_name}"
    return {
        "name": name,
        "message": message or commit.message,
        "id": tag_sha,
        "commit": {
            "url": f"{ctx.api}repos/{repo.full_name}/git/commits/{commit_sha}",
            "sha": commit_sha,
            "created": ts(commit.when),
        },
        "zipball_url": f"{html}/archive/{_q(name)}.zip",
        "tarball_url": f"{html}/archive/{_q(name)}.tar.gz",
    }


def commit_json(
    ctx: Ctx,
    repo: Repo,
    commit: Commit,
    *,
    stat: bool = True,
    files: bool = True,
    verification: bool = True,
) -> dict[str, Any]:
    api = f"{ctx.api}repos/{repo.full_name}/git/commits/{commit.sha}"
    git = repo.git
    changes = (
        git.changes(commit.parents[0] if commit.parents else None, commit.sha)
        if (stat or files)
        else []
    )
    author = ctx.ds.user_by_email(commit.author.email)
    committer = ctx.ds.user_by_email(commit.committer.email)
    when = ts(commit.when)
    additions = sum(c.additions for c in changes)
    deletions = sum(c.deletions for c in changes)
    return {
        "url": api,
        "sha": commit.sha,
        "created": when,
        "html_url": f"{ctx.root}{repo.full_name}/commit/{commit.sha}",
        "commit": {
            "url": api,
            "author": {"name": commit.author.name, "email": commit.author.email, "date": when},
            "committer": {
                "name": commit.committer.name,
                "email": commit.committer.email,
                "date": when,
            },
            "message": commit.message,
            "tree": {
                "url": f"{ctx.api}repos/{repo.full_name}/git/trees/{commit.tree}",
                "sha": commit.tree,
                "created": when,
            },
            "verification": _verification() if verification else None,
        },
        "author": user_json(ctx, author) if author else None,
        "committer": user_json(ctx, committer) if committer else None,
        "parents": [
            {
                "url": f"{ctx.api}repos/{repo.full_name}/git/commits/{p}",
                "sha": p,
                "created": ZERO_TIME,
            }
            for p in commit.parents
        ],
        "files": [{"filename": c.path, "status": c.status} for c in changes] if files else None,
        "stats": {"total": additions + deletions, "additions": additions, "deletions": deletions}
        if stat
        else None,
    }


def commit_patch(repo: Repo, commit: Commit) -> str:
    """``git format-patch`` style text for one commit."""
    changes = repo.git.changes(commit.parents[0] if commit.parents else None, commit.sha)
    subject, _, rest = commit.message.partition("\n")
    stat_lines = "".join(
        f" {c.path} | {c.additions + c.deletions} {'+' * min(c.additions, 30)}{'-' * min(c.deletions, 30)}\n"
        for c in changes
    )
    adds = sum(c.additions for c in changes)
    dels = sum(c.deletions for c in changes)
    return (
        f"From {commit.sha} Mon Sep 17 00:00:00 2001\n"
        f"From: {commit.author.name} <{commit.author.email}>\n"
        f"Date: {commit.when.strftime('%a, %d %b %Y %H:%M:%S +0000')}\n"
        f"Subject: [PATCH] {subject}\n\n{rest.strip()}{chr(10) if rest.strip() else ''}---\n"
        f"{stat_lines} {len(changes)} files changed, {adds} insertions(+), {dels} deletions(-)\n\n"
        + "".join(c.patch for c in changes)
        + "\n"
    )


def tree_entry_json(ctx: Ctx, repo: Repo, path: str, entry: TreeEntry) -> dict[str, Any]:
    kind = "trees" if entry.type == "tree" else "blobs"
    return {
        "path": path,
        "mode": entry.mode,
        "type": entry.type,
        "size": entry.size,
        "sha": entry.sha,
        "url": f"{ctx.api}repos/{repo.full_name}/git/{kind}/{entry.sha}",
    }


def _ref_kind(git: GitRepo, ref: str) -> str:
    if ref in git.branches:
        return "branch"
    if ref in git.tags:
        return "tag"
    return "commit"


def contents_json(
    ctx: Ctx,
    repo: Repo,
    ref: str,
    commit_sha: str,
    path: str,
    entry: TreeEntry,
    *,
    with_content: bool,
) -> dict[str, Any]:
    git = repo.git
    html = f"{ctx.root}{repo.full_name}"
    kind = _ref_kind(git, ref)
    ref_q = quote(ref, safe="")
    self_url = f"{ctx.api}repos/{repo.full_name}/contents/{_q(path)}?ref={ref_q}"
    git_url = f"{ctx.api}repos/{repo.full_name}/git/{'trees' if entry.type == 'tree' else 'blobs'}/{entry.sha}"
    html_url = f"{html}/src/{kind}/{_q(ref)}/{_q(path)}"
    last = git.last_commit_touching(commit_sha, path)
    is_file = entry.type == "blob"
    data = git.blobs[entry.sha] if is_file else b""
    return {
        "name": entry.name,
        "path": path,
        "sha": entry.sha,
        "last_commit_sha": last.sha,
        "last_committer_date": ts(last.when),
        "last_author_date": ts(last.when),
        "type": "file" if is_file else "dir",
        "size": entry.size,
        "encoding": "base64" if is_file and with_content else None,
        "content": base64.b64encode(data).decode() if is_file and with_content else None,
        "target": None,
        "url": self_url,
        "html_url": html_url,
        "git_url": git_url,
        "download_url": f"{html}/raw/{kind}/{_q(ref)}/{_q(path)}" if is_file else None,
        "submodule_git_url": None,
        "_links": {"self": self_url, "git": git_url, "html": html_url},
    }


def label_json(ctx: Ctx, repo: Repo, label: Label) -> dict[str, Any]:
    return {
        "id": label.id,
        "name": label.name,
        "exclusive": label.exclusive,
        "is_archived": label.is_archived,
        "color": label.color,
        "description": label.description,
        "url": f"{ctx.api}repos/{repo.full_name}/labels/{label.id}",
    }


def milestone_json(repo: Repo, ms: Milestone | None) -> dict[str, Any] | None:
    if ms is None:
        return None
    mine = [i for i in repo.issues if i.milestone is ms]
    return {
        "id": ms.id,
        "title": ms.title,
        "description": ms.description,
        "state": ms.state,
        "open_issues": sum(1 for i in mine if i.state == "open"),
        "closed_issues": sum(1 for i in mine if i.state == "closed"),
        "created_at": ts(ms.created),
        "updated_at": ts(max([ms.created] + [i.updated_at for i in mine])),
        "closed_at": ts(ms.closed_at),
        "due_on": ts(ms.due_on),
    }


def issue_json(ctx: Ctx, repo: Repo, issue: Issue) -> dict[str, Any]:
    kind = "pulls" if issue.is_pull else "issues"
    assignees = [user_ref(ctx, a) for a in issue.assignees]
    pull = issue.pull
    return {
        "id": issue.id,
        "url": f"{ctx.api}repos/{repo.full_name}/issues/{issue.number}",
        "html_url": f"{ctx.root}{repo.full_name}/{kind}/{issue.number}",
        "number": issue.number,
        "user": user_ref(ctx, issue.user),
        "original_author": "",
        "original_author_id": 0,
        "title": issue.title,
        "body": issue.body,
        "ref": "",
        "assets": [],
        "labels": [label_json(ctx, repo, label) for label in issue.labels],
        "milestone": milestone_json(repo, issue.milestone),
        "assignee": assignees[0] if assignees else None,
        "assignees": assignees or None,
        "state": issue.state,
        "is_locked": issue.locked,
        "comments": len(issue.comments),
        "created_at": ts(issue.created),
        "updated_at": ts(issue.updated_at),
        "closed_at": ts(issue.closed_at),
        "due_date": None,
        "time_estimate": 0,
        "pull_request": (
            {
                "merged": pull.merged,
                "merged_at": ts(pull.merged_at),
                "draft": pull.draft,
                "html_url": f"{ctx.root}{repo.full_name}/pulls/{issue.number}",
            }
            if pull
            else None
        ),
        "repository": {
            "id": repo.id,
            "name": repo.name,
            "owner": repo.owner,
            "full_name": repo.full_name,
        },
        "pin_order": 0,
        "content_version": 0,
    }


def comment_json(ctx: Ctx, repo: Repo, issue: Issue, comment: Comment) -> dict[str, Any]:
    kind = "pulls" if issue.is_pull else "issues"
    return {
        "id": comment.id,
        "html_url": f"{ctx.root}{repo.full_name}/{kind}/{issue.number}#issuecomment-{comment.id}",
        "pull_request_url": f"{ctx.root}{repo.full_name}/pulls/{issue.number}"
        if issue.is_pull
        else "",
        "issue_url": f"{ctx.root}{repo.full_name}/issues/{issue.number}"
        if not issue.is_pull
        else "",
        "user": user_ref(ctx, comment.user),
        "original_author": "",
        "original_author_id": 0,
        "body": comment.body,
        "assets": [],
        "created_at": ts(comment.created),
        "updated_at": ts(comment.updated or comment.created),
    }


def pull_json(ctx: Ctx, repo: Repo, issue: Issue) -> dict[str, Any]:
    pull = issue.pull
    assert pull is not None
    changes = repo.git.changes(pull.merge_base, pull.head_sha)
    base_sha = (
        pull.merge_base if pull.merged else repo.git.branches.get(pull.base_branch, pull.merge_base)
    )
    repo_full = repo_json(ctx, repo)
    html = f"{ctx.root}{repo.full_name}/pulls/{issue.number}"
    assignees = [user_ref(ctx, a) for a in issue.assignees]
    return {
        "id": pull.pr_id,
        "url": html,
        "number": issue.number,
        "user": user_ref(ctx, issue.user),
        "title": issue.title,
        "body": issue.body,
        "labels": [label_json(ctx, repo, label) for label in issue.labels],
        "milestone": milestone_json(repo, issue.milestone),
        "assignee": assignees[0] if assignees else None,
        "assignees": assignees or None,
        "requested_reviewers": [],
        "requested_reviewers_teams": [],
        "state": issue.state,
        "draft": pull.draft,
        "is_locked": issue.locked,
        "comments": len(issue.comments),
        "review_comments": pull.review_comments,
        "additions": sum(c.additions for c in changes),
        "deletions": sum(c.deletions for c in changes),
        "changed_files": len(changes),
        "html_url": html,
        "diff_url": f"{html}.diff",
        "patch_url": f"{html}.patch",
        "mergeable": pull.mergeable and issue.state == "open",
        "merged": pull.merged,
        "merged_at": ts(pull.merged_at),
        "merge_commit_sha": pull.merge_commit_sha,
        "merged_by": user_ref(ctx, pull.merged_by) if pull.merged_by else None,
        "allow_maintainer_edit": False,
        "base": {
            "label": pull.base_branch,
            "ref": pull.base_branch,
            "sha": base_sha,
            "repo_id": repo.id,
            "repo": repo_full,
        },
        "head": {
            "label": pull.head_branch,
            "ref": pull.head_branch,
            "sha": pull.head_sha,
            "repo_id": repo.id,
            "repo": repo_full,
        },
        "merge_base": pull.merge_base,
        "due_date": None,
        "created_at": ts(issue.created),
        "updated_at": ts(issue.updated_at),
        "closed_at": ts(issue.closed_at),
        "pin_order": 0,
        "content_version": 0,
    }


def changed_file_json(ctx: Ctx, repo: Repo, head_sha: str, change: Any) -> dict[str, Any]:
    html = f"{ctx.root}{repo.full_name}"
    return {
        "filename": change.path,
        "status": change.status,
        "additions": change.additions,
        "deletions": change.deletions,
        "changes": change.additions + change.deletions,
        "html_url": f"{html}/src/commit/{head_sha}/{_q(change.path)}",
        "contents_url": f"{ctx.api}repos/{repo.full_name}/contents/{_q(change.path)}?ref={head_sha}",
        "raw_url": f"{html}/raw/commit/{head_sha}/{_q(change.path)}",
    }


def release_json(ctx: Ctx, repo: Repo, rel: Release) -> dict[str, Any]:
    html = f"{ctx.root}{repo.full_name}"
    api = f"{ctx.api}repos/{repo.full_name}/releases/{rel.id}"
    return {
        "id": rel.id,
        "tag_name": rel.tag_name,
        "target_commitish": rel.target,
        "name": rel.name,
        "body": rel.body,
        "url": api,
        "html_url": f"{html}/releases/tag/{_q(rel.tag_name)}",
        "tarball_url": f"{html}/archive/{_q(rel.tag_name)}.tar.gz",
        "zipball_url": f"{html}/archive/{_q(rel.tag_name)}.zip",
        "upload_url": f"{api}/assets",
        "draft": rel.draft,
        "prerelease": rel.prerelease,
        "created_at": ts(rel.created),
        "published_at": ts(rel.created),
        "author": user_ref(ctx, rel.author),
        "assets": [],
    }
