"""What the window does, as functions over a :class:`~node.services.context.NodeContext`.

Handlers (JSON API, HTML pages) parse, authorize, call one of these, render:

* :mod:`.matters`: ``search_matters``, ``matter_detail`` (事项 this window may accept);
* :mod:`.accept`: ``accept_application`` (收件) and the ``receipt`` (受理回执);
* :mod:`.cases`: ``list_cases``, ``case_detail`` (timeline in Chinese), ``deliver`` (出件);
* :mod:`.window`: ``find_waiting`` and ``supplement`` (补齐补正 at any window),
  ``decide_on_the_spot`` (即办), ``withdraw`` (撤回), ``rate`` (好差评);
* :mod:`.bundles`: ``accept_bundle``, ``bundle_detail``, ``deliver_bundle`` (一件事一次办);
* :mod:`.status`: ``sync_status`` (the sync bar), ``quarantine_list``, ``release``;
* :mod:`.auth`: clerk accounts, login sessions, CSRF tokens.

Every refusal is a :class:`~node.services.errors.ServiceError` with a Chinese message.
"""
