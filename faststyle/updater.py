"""One training step: CFNS's perceptual losses plus the noise-stability loss
(and, when asked for, the coarse style, colour, tone, target and shift losses)."""
import functools
import math

import chainer
import numpy

from faststyle import losses
from faststyle.errors import InputError
import net
import noise


class DivergedError(Exception):
    """The loss stopped being finite; parameters were not updated with it."""


class StyleTransferUpdater(chainer.training.updaters.StandardUpdater):
    """Trains the transform net ``optimizer.target`` against a fixed VGG16.

    Reports ``loss`` and its terms ``loss_feat``, ``loss_style``,
    ``loss_coarse_style``, ``loss_tv``,
    ``loss_colour``, ``loss_tone``, ``loss_target``, ``loss_target_style``, ``loss_pop``,
    ``loss_shift`` and
    ``pop_share`` (L_pop / total, which the stabilization note tuned to
    about 10 %).
    """

    def __init__(self, iterator, optimizer, vgg, style, device, config):
        """``config``: a training.TrainConfig; its image size, loss weights,
        loss margin and noise settings are used."""
        super().__init__(iterator, optimizer, device=device)
        self.vgg = vgg
        self.config = config
        with chainer.using_config('train', False), chainer.no_backprop_mode():
            self.style_grams = losses.style_grams(vgg, device.send(style))
            self.coarse_grams = (
                losses.style_grams(vgg, losses.shrink(device.send(style), config.coarse_shrink))
                if config.lambda_coarse_style else None)
        self.style_layer_weights = (losses.balanced_layer_weights(self.style_grams)
                                    if config.balance_style_layers else None)
        self.coarse_layer_weights = (losses.balanced_layer_weights(self.coarse_grams)
                                     if config.balance_style_layers and self.coarse_grams
                                     else None)
        self.noise = self.make_noise(config.noise_seed) if config.lambda_noise else None
        self.colour_histogram = (losses.ColourHistogram(device.send(style))
                                 if config.lambda_colour or config.lambda_tone else None)

    def make_noise(self, seed):
        batchsize = self.get_iterator('main').batch_size
        config = self.config
        return self.device.send(noise.make_noise(
            batchsize, config.image_size, config.noise_count, config.noise_range, seed))

    def noise_for_iteration(self):
        """The fixed noise image, or a fresh one per batch (seeded by iteration)."""
        if self.config.noise_per_batch:
            return self.make_noise(self.config.noise_seed + self.iteration + 1)
        return self.noise

    def shift_for_iteration(self):
        """The move (dy, dx) of L_shift's crop: each 0..3 pixels, not both 0
        (a move by net.STRIDE leaves the output as it was), drawn from --seed
        and the iteration, so that a resumed run draws the same ones."""
        rng = numpy.random.RandomState((self.config.seed + self.iteration) % 2 ** 32)
        move = rng.randint(1, net.STRIDE ** 2)
        return divmod(move, net.STRIDE)

    def update_core(self):
        iterator = self.get_iterator('main')
        optimizer = self.get_optimizer('main')
        model = optimizer.target
        batch = self.device.send(self.converter(iterator.next()))
        # With --targets each example is the pair (crop, its target).
        x, target = batch if isinstance(batch, tuple) else (batch, None)
        if (self.config.lambda_target or self.config.lambda_target_style) and target is None:
            raise InputError('the target losses need the dataset opened with its --targets')
        transform = functools.partial(self.transform, model)
        y = transform(x)
        # Every loss is taken on the interior: a net scored on the whole crop
        # learns to paint the style into a frame along the borders (its
        # zero-padded convolutions find the edge, and a Gram matrix is a
        # global statistic), which generate.py's padding then crops away.
        config = self.config
        inside = functools.partial(losses.interior, margin=config.loss_margin)
        features_y = self.vgg(inside(y))
        loss_feat, loss_style, loss_tv = losses.perceptual_losses(
            self.vgg, inside(x), inside(y), self.style_grams, config.lambda_feat,
            config.lambda_style, config.lambda_tv, self.style_layer_weights, features_y)
        loss_coarse_style = 0.0
        if config.lambda_coarse_style:
            loss_coarse_style = losses.coarse_style_loss(
                self.vgg, inside(y), self.coarse_grams, config.coarse_shrink,
                config.lambda_coarse_style, self.coarse_layer_weights)
        loss_colour = 0.0
        if config.lambda_colour:
            loss_colour = config.lambda_colour * self.colour_histogram(inside(y))
        loss_tone = 0.0
        if config.lambda_tone:
            loss_tone = config.lambda_tone * self.colour_histogram.tones(inside(x), inside(y))
        features_target = None
        if (config.lambda_target and not config.target_pixels) or config.lambda_target_style:
            features_target = losses.target_features(self.vgg, inside(target))
        loss_target = 0.0
        if config.lambda_target:
            if config.target_pixels:
                loss_target = losses.target_pixel_loss(inside(y), inside(target),
                                                       config.lambda_target)
            else:
                loss_target = losses.target_loss(features_y, features_target,
                                                 config.lambda_target)
        loss_target_style = 0.0
        if config.lambda_target_style:
            loss_target_style = losses.target_style_loss(
                features_y, features_target, config.lambda_target_style,
                self.style_layer_weights)
        loss_pop = 0.0
        if config.lambda_noise:
            loss_pop = noise.pop_loss(transform, x, y, self.noise_for_iteration(),
                                      config.lambda_noise, region=inside)
        loss_shift = 0.0
        if config.lambda_shift:
            loss_shift = losses.shift_loss(
                transform, x, y, self.shift_for_iteration(), config.lambda_shift,
                max(config.loss_margin, config.image_size // 8))
        loss = (loss_feat + loss_style + loss_coarse_style + loss_tv + loss_colour + loss_tone
                + loss_target + loss_target_style + loss_pop + loss_shift)
        value = float(loss.array)
        self.check_finite(value)
        model.cleargrads()
        loss.backward()
        optimizer.update()
        pop_value = float(getattr(loss_pop, 'array', loss_pop))
        chainer.report({
            'loss': loss, 'loss_feat': loss_feat, 'loss_style': loss_style,
            'loss_coarse_style': loss_coarse_style,
            'loss_tv': loss_tv, 'loss_colour': loss_colour, 'loss_tone': loss_tone,
            'loss_target': loss_target, 'loss_target_style': loss_target_style,
            'loss_pop': pop_value, 'loss_shift': loss_shift,
            'pop_share': pop_value / value if value else 0.0,
        }, model)

    def transform(self, model, x):
        """``model(x)``; with ``crop_padding`` P, run as generate.py runs it:
        each crop mirrored P pixels outward (numpy's 'symmetric', generate.py's
        --padding), the output cropped back to the crop.

        A zero-padded convolution tells the net where the image's edge is,
        and within about 40 pixels of it the net can paint differently. On a
        128-px crop almost every pixel is that close to an edge; in a video
        frame most are not, and nets trained only on crops were 2-5x further
        from the style there (benchmarks/edge_dependence.py). With P of 40
        or more, the edge is out of that reach of the pixels the losses see
        (the net's window, 55 px each way, benchmarks/receptive_field.py,
        still touches the outer few at P = 50, barely)."""
        padding = self.config.crop_padding
        if not padding:
            return model(x)
        xp = chainer.backend.get_array_module(x)
        wide = xp.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)),
                      mode='symmetric')
        return model(wide)[:, :, padding:-padding, padding:-padding]

    def check_finite(self, value):
        """Raise DivergedError, before any update, if the loss is not finite."""
        if not math.isfinite(value):
            raise DivergedError('the loss became {} at iteration {}'.format(
                value, self.iteration + 1))

    def serialize(self, serializer):
        super().serialize(serializer)
        # The noise image goes into snapshots, so a resumed run keeps exactly
        # the image it trained with.
        if self.noise is not None:
            serializer('noise', self.noise)
