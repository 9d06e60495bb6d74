"""The parts a case is composed of. :class:`workflows.case.CaseWorkflow` puts them together;
a process designer calls them from a case type's ``steps``.

=====================  ===================================================================
``base``               the case's state, its timeline, status changes, the read model
``tasks``              human tasks: create, route, wait, escalate and transfer
``task_updates``       what agents do to a task (claim, release, assign, reassign, note,
                       complete), each checked by a validator before anything is written
``notify``             send the customer a message through their channel
``conversation``       the customer's messages: wait for one, ask and wait, close when quiet
``sla``                the SLA supervisor: the clock, its durable timers and escalations
``gather``             the customer 360 from the ERP, the carrier and the old helpdesk
``faq``                ask the FAQ bot, and let it answer when it is sure
``refund``             move money through the ERP, exactly once
``handover``           continue a long case as a new run, and take it over there
=====================  ===================================================================
"""
