"""Published methods reproduced as studies, on the same engine as the appliance's own training.

Each module is a `wardrobe train` preset (fashion-mnist, attributes, vae-oversample, vae-home,
experts) whose results and protocol are written up in docs/. The appliance's training (classifier,
export, colours, segmentation, evaluate) never imports from here.
"""
