using System;
using System.Globalization;
using System.IO;

namespace FashionMnist;

/// <summary>Command-line options. Unknown options and bad values are errors, never silently ignored.</summary>
public sealed class Options
{
    public const string Usage = """
        usage: FashionMnist [options]
          --model NAME                lenet5 (default), simpleconvnet, keras-baseline, alexnet or fashionnet;
                                      each is declared for 1×28×28 and 3×32×32 input, the data picks the variant
          --data DIR                  an IDX folder (Fashion-MNIST's four files), a CIFAR-10 binary folder
                                      (data_batch_1..5.bin, test_batch.bin) or an image-folder tree
                                      (train/<class>/*.png|jpg, test/<class>/...); default: the shipped Fashion-MNIST
          --epochs N                  epochs to train; 0 evaluates only (default: the model's, see below)
          --batch N                   batch size (default: the model's)
          --lr X                      learning rate (default: the model's; SGD 0.05)
          --optimizer adamw|adam|sgd  optimizer (default: the model's; SGD has momentum 0.9)
          --schedule cosine|constant  learning-rate schedule over the epochs (default: the model's)
          --validation-split F        hold out the last fraction F of the training set for validation (Keras'
                                      validation_split); default 0: the test set is the validation data, as in
                                      the seed's Keras script
          --early-stopping N          stop after N epochs without a lower val_loss and restore the best weights
          --checkpoint DIR            after every epoch write DIR/last.safetensors (a resumable checkpoint), and
                                      DIR/best.safetensors (weights of the best val_accuracy so far)
          --resume                    continue the run of --checkpoint DIR from its last.safetensors
          --augment                   random crop (padding 4, 2 for 28×28) and horizontal flip of training images
          --seed N                    seed for initialisation, shuffling, dropout and augmentation (default 1)
          --threads N                 cores to use (default: all)
          --train-limit N             train on the first N training images only (default: all)
          --test-limit N              evaluate on the first N test images only (default: all)
          --save PATH                 write the trained weights (safetensors)
          --load PATH                 read weights before training or evaluating
          --report DIR                write an HTML report (curves, confusion matrix, filters, mistakes) and history.csv
          --help                      show this text

        model defaults (each reached at least 90 % test accuracy on Fashion-MNIST with them; see the README):
          lenet5          15 epochs, batch 64,  AdamW 0.003, cosine
          simpleconvnet   10 epochs, batch 100, Adam 0.001,  cosine
          keras-baseline  12 epochs, batch 32,  Adam 0.001,  cosine, ModelCheckpoint save-best of val_accuracy
                          (into --checkpoint DIR, else <temp>/unrolled-keras-baseline)
          alexnet          6 epochs, batch 64,  AdamW 0.001, cosine
          fashionnet       4 epochs, batch 64,  AdamW 0.002, cosine
        """;

    public string Model { get; private set; } = "lenet5";
    public int Epochs { get; private set; } = -1;
    public int Batch { get; private set; } = -1;
    public float LearningRate { get; private set; } = float.NaN;
    public string Optimizer { get; private set; } = "";
    public string Schedule { get; private set; } = "";
    public int Seed { get; private set; } = 1;
    public int Threads { get; private set; } = Environment.ProcessorCount;
    public string Data { get; private set; } = DefaultDataDirectory();
    public double ValidationSplit { get; private set; }
    public int EarlyStopping { get; private set; }
    public string? Checkpoint { get; private set; }
    public bool Resume { get; private set; }
    public bool Augment { get; private set; }
    public int TrainLimit { get; private set; } = int.MaxValue;
    public int TestLimit { get; private set; } = int.MaxValue;
    public string? Save { get; private set; }
    public string? Load { get; private set; }
    public string? Report { get; private set; }
    public bool Help { get; private set; }

    /// <summary>The model's settings the options were completed from.</summary>
    public ModelInfo ModelInfo { get; private set; } = Models.All[0];

    public static Options Parse(string[] args)
    {
        var o = new Options();
        for (int i = 0; i < args.Length; i++)
        {
            string name = args[i];
            string Value()
            {
                if (i + 1 >= args.Length) throw new ArgumentException($"{name} needs a value.");
                return args[++i];
            }
            int Int(int min)
            {
                string v = Value();
                if (!int.TryParse(v, NumberStyles.Integer, CultureInfo.InvariantCulture, out int n) || n < min)
                    throw new ArgumentException($"{name} must be an integer of at least {min}, not '{v}'.");
                return n;
            }
            switch (name)
            {
                case "--model":
                    o.Model = Value().ToLowerInvariant();
                    o.ModelInfo = Models.Find(o.Model);
                    break;
                case "--epochs": o.Epochs = Int(0); break;
                case "--batch": o.Batch = Int(1); break;
                case "--lr":
                {
                    string v = Value();
                    if (!float.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out float lr) || !(lr > 0) || float.IsInfinity(lr))
                        throw new ArgumentException($"--lr must be a positive number, not '{v}'.");
                    o.LearningRate = lr;
                    break;
                }
                case "--optimizer":
                    o.Optimizer = Value().ToLowerInvariant();
                    if (o.Optimizer is not ("adamw" or "adam" or "sgd")) throw new ArgumentException($"unknown optimizer '{o.Optimizer}'; choose adamw, adam or sgd.");
                    break;
                case "--schedule":
                    o.Schedule = Value().ToLowerInvariant();
                    if (o.Schedule is not ("cosine" or "constant")) throw new ArgumentException($"unknown schedule '{o.Schedule}'; choose cosine or constant.");
                    break;
                case "--validation-split":
                {
                    string v = Value();
                    if (!double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out double f) || !(f >= 0 && f < 1))
                        throw new ArgumentException($"--validation-split must be a fraction in [0, 1), not '{v}'.");
                    o.ValidationSplit = f;
                    break;
                }
                case "--early-stopping": o.EarlyStopping = Int(1); break;
                case "--checkpoint": o.Checkpoint = Value(); break;
                case "--resume": o.Resume = true; break;
                case "--augment": o.Augment = true; break;
                case "--seed": o.Seed = Int(int.MinValue); break;
                case "--threads": o.Threads = Int(1); break;
                case "--data": o.Data = Value(); break;
                case "--train-limit": o.TrainLimit = Int(1); break;
                case "--test-limit": o.TestLimit = Int(1); break;
                case "--save": o.Save = Value(); break;
                case "--load": o.Load = Value(); break;
                case "--report": o.Report = Value(); break;
                case "--help" or "-h": o.Help = true; break;
                default: throw new ArgumentException($"unknown option '{name}'.");
            }
        }

        ModelInfo m = o.ModelInfo;
        if (o.Epochs < 0) o.Epochs = m.Epochs;
        if (o.Batch < 0) o.Batch = m.Batch;
        if (o.Schedule.Length == 0) o.Schedule = m.Schedule;
        if (float.IsNaN(o.LearningRate))
        {
            // The model's rate goes with the model's optimizer (or another of the Adam family); SGD wants a larger one.
            string optimizer = o.Optimizer.Length == 0 ? m.Optimizer : o.Optimizer;
            o.LearningRate = optimizer == "sgd" ? (m.Optimizer == "sgd" ? m.LearningRate : 0.05f)
                : m.Optimizer == "sgd" ? 0.001f : m.LearningRate;
        }
        if (o.Optimizer.Length == 0) o.Optimizer = m.Optimizer;
        if (o.TrainLimit < o.Batch)
            throw new ArgumentException($"--train-limit {o.TrainLimit} leaves less than one batch of {o.Batch} images.");
        if (o.Resume && o.Checkpoint is null)
            throw new ArgumentException("--resume needs --checkpoint DIR (the folder of the run to continue).");
        if (o.Resume && o.Load is not null)
            throw new ArgumentException("--resume and --load both set the weights; give one of them.");
        return o;
    }

    /// <summary>Where the run's checkpoints go: --checkpoint, or for a model that saves its best epoch by default a temp folder.</summary>
    public string? CheckpointDirectory =>
        Checkpoint ?? (ModelInfo.SaveBest && Epochs > 0 ? Path.Combine(Path.GetTempPath(), "unrolled-" + Model) : null);

    /// <summary>examples/data/fashion-mnist, found by walking up from the program to the repository.</summary>
    private static string DefaultDataDirectory()
    {
        for (string? dir = AppContext.BaseDirectory; dir is not null; dir = Path.GetDirectoryName(dir))
        {
            string candidate = Path.Combine(dir, "examples", "data", "fashion-mnist");
            if (Directory.Exists(candidate)) return candidate;
        }
        return Path.Combine("examples", "data", "fashion-mnist");
    }
}
