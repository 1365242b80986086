"""Label Studio review backend: a REST client (`client`), conversions between review tasks and Label
Studio tasks (`convert`), and the project's create/check/collect (`project`)."""
