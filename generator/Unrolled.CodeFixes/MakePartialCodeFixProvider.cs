using System.Collections.Immutable;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CodeActions;
using Microsoft.CodeAnalysis.CodeFixes;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Unrolled.Generator;

namespace Unrolled.CodeFixes;

/// <summary>
/// UNR0001: adds the <c>partial</c> modifier to every declaration of the network class that lacks it (the
/// compiler requires it on all of them once one has it), just before the <c>class</c> keyword.
/// </summary>
[ExportCodeFixProvider(LanguageNames.CSharp, Name = nameof(MakePartialCodeFixProvider))]
public sealed class MakePartialCodeFixProvider : CodeFixProvider
{
    /// <summary>The equivalence key of the fix, shared by every occurrence so that Fix All groups them.</summary>
    public const string EquivalenceKey = "Unrolled.MakePartial";

    public override ImmutableArray<string> FixableDiagnosticIds { get; } = ImmutableArray.Create(Diagnostics.NotPartial.Id);

    public override FixAllProvider GetFixAllProvider() => WellKnownFixAllProviders.BatchFixer;

    public override async Task RegisterCodeFixesAsync(CodeFixContext context)
    {
        SyntaxNode? root = await context.Document.GetSyntaxRootAsync(context.CancellationToken).ConfigureAwait(false);
        if (root is null) return;
        foreach (Diagnostic diagnostic in context.Diagnostics)
        {
            // The generator reports UNR0001 on the identifier of the class's first declaration.
            if (root.FindToken(diagnostic.Location.SourceSpan.Start).Parent is not TypeDeclarationSyntax declaration
                || declaration.Identifier.Span != diagnostic.Location.SourceSpan)
                continue;
            Document document = context.Document;
            context.RegisterCodeFix(
                CodeAction.Create($"Make '{declaration.Identifier.ValueText}' partial",
                    ct => MakePartialAsync(document, declaration, ct), EquivalenceKey),
                diagnostic);
        }
    }

    private static async Task<Solution> MakePartialAsync(Document document, TypeDeclarationSyntax declaration, CancellationToken ct)
    {
        SemanticModel? model = await document.GetSemanticModelAsync(ct).ConfigureAwait(false);
        INamedTypeSymbol? type = model?.GetDeclaredSymbol(declaration, ct);
        var declarations = type is null
            ? new[] { declaration }
            : type.DeclaringSyntaxReferences.Select(r => r.GetSyntax(ct)).OfType<TypeDeclarationSyntax>().ToArray();

        Solution solution = document.Project.Solution;
        foreach (var inTree in declarations.Where(d => !d.Modifiers.Any(SyntaxKind.PartialKeyword)).GroupBy(d => d.SyntaxTree))
        {
            Document? target = solution.GetDocument(inTree.Key);
            if (target is null) continue; // not a document of this solution (generated code)
            SyntaxNode root = await inTree.Key.GetRootAsync(ct).ConfigureAwait(false);
            solution = target.WithSyntaxRoot(root.ReplaceNodes(inTree, (_, current) => AddPartial(current))).Project.Solution;
        }
        return solution;
    }

    /// <summary>Adds <c>partial</c> as the last modifier; without modifiers it takes over the keyword's leading trivia.</summary>
    private static TypeDeclarationSyntax AddPartial(TypeDeclarationSyntax declaration)
    {
        SyntaxToken partial = Tokens.SpaceAfter(SyntaxKind.PartialKeyword);
        if (declaration.Modifiers.Count > 0)
            return declaration.WithModifiers(declaration.Modifiers.Add(partial));
        return declaration
            .WithKeyword(declaration.Keyword.WithLeadingTrivia())
            .WithModifiers(SyntaxFactory.TokenList(partial.WithLeadingTrivia(declaration.Keyword.LeadingTrivia)));
    }
}
