"""The course graders' interface, one package: their JSON configuration format (``configuration``),
the configurations and instances on top of ctrd's public operations (``service``), their HTTP
routes (``routes``) and ``ctrctl`` verbs (``cli``). ctrd's core knows nothing of it: it is
plugged in where ctrd is composed (``supervisor.ctrd``) and where ``ctrctl`` lists its verbs.
"""
