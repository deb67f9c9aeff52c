"""What differs between the lab and on-prem: ``sites.Site``, chosen by the target's kind (the two
implementations live with what builds each target, in ``provisioning``), and what a site does for the others
(which kubectl runs, how an image tag becomes pullable). The library asks the site, never the target's kind.

May import: ``run``, ``clients``."""
